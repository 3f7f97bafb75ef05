package protocol

// ValidID reports whether s is a valid user or conversation id:
// [A-Za-z0-9_-]{1,64}. Ids become NATS subject tokens, so nothing else may
// pass.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidClientID reports whether s may be a client_id: 1 to 128 printable
// ASCII characters without spaces. It travels in a NATS header, where control
// characters would break the framing.
func ValidClientID(s string) bool {
	if len(s) == 0 || len(s) > MaxClientIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
