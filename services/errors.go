package services

import "errors"

var (
	// ErrNotFound says no service of that name is registered.
	ErrNotFound = errors.New("services: no such service")
	// ErrInvalid says a name, sender or record is malformed.
	ErrInvalid = errors.New("services: invalid")
	// ErrSenderTaken says a sender already belongs to another service: a
	// sender id is posted as by one service only.
	ErrSenderTaken = errors.New("services: sender belongs to another service")
)
