package natsrv

import "regexp"

// userinfo matches the user:password@ part of every URL in a text.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:@/\s,]*):[^@/\s,]*@`)

// RedactURLs returns s with the password of every URL in it replaced by
// "xxxxx": a single URL, a comma-separated list (--nats-url) or a log
// line. Every NATS URL that reaches a log goes through it, because the
// URLs operators pass carry the role's password and logs are read by
// more people than the credentials file.
func RedactURLs(s string) string {
	return userinfo.ReplaceAllString(s, "$1:xxxxx@")
}
