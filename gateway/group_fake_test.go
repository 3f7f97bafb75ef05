package gateway

import (
	"context"
	"fmt"
)

// noGroups is the Groups of the gateway's unit tests, which have no group
// settings: every change is refused. The rules are tested in conversation
// and, with the gateway, in e2e (group_test.go).
type noGroups struct{}

var errNoGroups = fmt.Errorf("%w: the test fakes have no group settings", ErrBadRequest)

func (noGroups) Update(context.Context, Actor, string, GroupSettings) (Conversation, error) {
	return nil, errNoGroups
}
func (noGroups) SetRole(context.Context, Actor, string, string, string) error { return errNoGroups }
func (noGroups) Transfer(context.Context, Actor, string, string) error        { return errNoGroups }
func (noGroups) Ban(context.Context, Actor, string, string) error             { return errNoGroups }
func (noGroups) Unban(context.Context, Actor, string, string) error           { return errNoGroups }
func (noGroups) Banned(context.Context, string, string) ([]string, error)     { return nil, errNoGroups }
