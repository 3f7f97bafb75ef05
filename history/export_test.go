package history

// SetAfterHook makes f run at the end of each read of r.After, before the
// answer is handed to the callers that share it.
func SetAfterHook(r *Reader, f func()) { r.afterHook = f }
