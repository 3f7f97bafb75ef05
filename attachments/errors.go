package attachments

import "errors"

// Errors of the Service, wrapped with what was wrong; a client caused
// each but ErrNotFound from a Store.
var (
	// ErrNotFound: the Store has no such object.
	ErrNotFound = errors.New("attachments: not found")
	// ErrBadRequest: an upload or reference the rules refuse.
	ErrBadRequest = errors.New("attachments: bad request")
	// ErrTooLarge: a file over the size bound.
	ErrTooLarge = errors.New("attachments: too large")
	// ErrQuota: the upload would take its owner past the quota.
	ErrQuota = errors.New("attachments: quota exceeded")
	// ErrForbidden: an attachment that is not the sender's to reference.
	ErrForbidden = errors.New("attachments: forbidden")
)

var errTooManyPixels = errors.New("attachments: image has too many pixels for a thumbnail")
