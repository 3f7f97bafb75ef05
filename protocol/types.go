package protocol

// RequestTypes lists every frame type a client may send. Tests that must
// cover every request (the authorization matrix) range over it, so a new
// type cannot be forgotten there.
var RequestTypes = []string{
	TypeHello, TypePing,
	TypeCreate, TypeAddMember, TypeRemoveMember, TypeLeave, TypeMembers, TypeConversations,
	TypeSend, TypeSync, TypeHistory,
	TypeThread,
	TypeTyping, TypeRead, TypePresence,
	TypeRegisterDevice, TypeUnregisterDevice, TypeDevices, TypeMute,
	TypeReauth,
	TypeAccept, TypeDecline, TypeHide, TypeSettings,
	TypeBlock, TypeUnblock, TypeBlocked,
	TypeUpload,
	TypeUpdate, TypeSetRole, TypeTransfer, TypeUnban, TypeBanned,
	TypeSearch,
	TypeDelivered, TypeReceipts,
	TypeDeleteAccount, TypeExport,
}

// TypeReauth hands a connection a fresh token for its user before the one
// it authenticated with expires; without it the connection is closed with
// CloseTokenExpired when that token does.
const TypeReauth = "reauth"

// QuietOnSuccess reports whether req gets no ok when it succeeds: a
// typing, read or delivered without an id. A refused one is still answered with its
// error, without an id (a non-member's typing gets forbidden).
func QuietOnSuccess(req *Request) bool {
	return req.ID == "" && (req.Type == TypeTyping || req.Type == TypeRead || req.Type == TypeDelivered)
}
