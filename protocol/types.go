package protocol

// RequestTypes lists every frame type a client may send. Tests that must
// cover every request (the authorization matrix) range over it, so a new
// type cannot be forgotten there.
var RequestTypes = []string{
	TypeHello, TypePing,
	TypeCreate, TypeAddMember, TypeRemoveMember, TypeLeave, TypeMembers, TypeConversations,
	TypeSend, TypeSync, TypeHistory,
	TypeTyping, TypeRead, TypePresence,
	TypeRegisterDevice, TypeUnregisterDevice, TypeDevices, TypeMute,
	TypeBlock, TypeUnblock, TypeBlocked,
}
