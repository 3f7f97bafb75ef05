// Package admin answers an operator's questions about a user, a
// conversation and the CHAT stream's consumers, and makes the few changes
// an operator makes by hand: add or remove a member, close a user's
// connections. It works over the operator's NATS connection (full access
// to the CHAT account) and changes things only through the code paths the
// roles use: conversation.Store for membership, so that events are stored
// and fanned out and the gateways' membership views see the change, and
// schema.UserKick, which every gateway's subscription for the user
// receives. `natter admin` (cmd/natter) prints its reports as tables or
// JSON.
package admin
