package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/natter-chat/natter/protocol"
)

// Accounts is the account side of the gateway: erased users (services/erase)
// and a user's own delete_account.
type Accounts interface {
	// Erased reports whether uid's account was erased (or is being
	// erased): uid may not log in.
	Erased(ctx context.Context, uid string) (bool, error)
	// Delete records the erasure of uid, which the erase service then
	// carries out in the background. Once it returns, uid cannot log in
	// and every gateway closes uid's connections.
	Delete(ctx context.Context, uid string) error
	// Export builds uid's archive and returns it with a signed URL. An
	// archive over the bound is an error wrapping ErrTooLarge; a server
	// without an attachment store answers one wrapping ErrExportsOff.
	Export(ctx context.Context, uid string) (*protocol.ExportReady, error)
}

// ErrExportsOff: the server has no attachment store to put archives in.
var ErrExportsOff = errors.New("gateway: exports are off")

// exportTimeout bounds building an archive: a user's whole history.
const exportTimeout = 2 * time.Minute

// export answers export with the archive's signed URL.
func (sess *session) export(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if sess.srv.accounts == nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "export is not enabled on this server")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exportTimeout)
	defer cancel()
	res, err := sess.srv.accounts.Export(ctx, sess.user)
	if errors.Is(err, ErrExportsOff) {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "export needs the attachment store, which this server does not have")
	}
	if err != nil {
		return nil, sess.fail(err)
	}
	res.Type, res.ID = protocol.TypeExportReady, req.ID
	return res, nil
}

// refuseErased closes the connection of an erased user with
// protocol.CloseAccountErased, whatever their token: their sessions end
// with their account.
func (sess *session) refuseErased(ctx context.Context) error {
	if sess.srv.accounts == nil {
		return nil
	}
	erased, err := sess.srv.accounts.Erased(ctx, sess.user)
	if err != nil {
		sess.srv.cfg.Logger.Warn("erasure check failed", "user", sess.user, "err", err)
		sess.closeWith(protocol.CloseBackendDown)
		return err
	}
	if erased {
		sess.closeWith(protocol.CloseAccountErased)
		return errErased
	}
	return nil
}

// errErased: the user's account was erased.
var errErased = errors.New("gateway: account erased")

// deleteAccount answers delete_account: {"type":"delete_account","user":
// "<own id>"}. It answers account_deleted once the erasure is recorded,
// then closes this connection (after the answer is written) and the erase
// service's event closes the user's others.
func (sess *session) deleteAccount(ctx context.Context, req *protocol.Request) (any, *protocol.Error) {
	if sess.srv.accounts == nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "account deletion is not enabled on this server")
	}
	if req.User != sess.user {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "delete_account must name your own user id in \"user\" to confirm")
	}
	sess.deleting.Store(true)
	if err := sess.srv.accounts.Delete(ctx, sess.user); err != nil {
		sess.deleting.Store(false)
		return nil, sess.fail(err)
	}
	sess.reply(&protocol.AccountDeleted{Type: protocol.TypeAccountDeleted, ID: req.ID, User: sess.user})
	go sess.closeAfterWrites(protocol.CloseAccountErased, time.Second)
	return nil, nil
}

// closeAfterWrites closes the connection with cl once what is queued is
// written, or after at most wait.
func (sess *session) closeAfterWrites(cl protocol.Close, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for sess.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	sess.closeWith(cl)
}

// closeErased closes every connection of uid on this gateway with
// protocol.CloseAccountErased, on the erase service's event; a connection
// answering its own delete_account closes itself once the answer is out.
func (h *hub) closeErased(uid string) {
	h.mu.RLock()
	var sessions []*session
	if e := h.users[uid]; e != nil {
		sessions = e.sessions
	}
	h.mu.RUnlock()
	for _, s := range sessions {
		if !s.deleting.Load() {
			s.closeWith(protocol.CloseAccountErased)
		}
	}
}
