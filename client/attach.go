package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/natter-chat/natter/protocol"
)

// httpOrigin is the http[s]://host of a ws[s]:// URL, which relative
// upload and file URLs are resolved against.
func httpOrigin(wsURL string) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	scheme := "http"
	if u.Scheme == "wss" || u.Scheme == "https" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

// ResolveURL makes a URL of an upload or a file absolute: the server's
// embedded store gives them relative to itself.
func (c *Client) ResolveURL(u string) string {
	if strings.Contains(u, "://") || c.origin == "" {
		return u
	}
	return c.origin + u
}

func (c *Client) httpClient() *http.Client {
	if c.hc != nil {
		return c.hc
	}
	return http.DefaultClient
}

// Upload asks for an upload URL for a file of size bytes of contentType;
// name (optional) is shown to the other members. PUT the bytes with Put,
// then reference the reply's Attachment in a message body's
// "attachments" array.
func (c *Client) Upload(ctx context.Context, contentType string, size int64, name string) (*protocol.UploadURL, error) {
	var up protocol.UploadURL
	err := c.call(ctx, protocol.Request{Type: protocol.TypeUpload, ContentType: contentType, Size: size, Name: name}, protocol.TypeUploadURL, &up)
	if err != nil {
		return nil, err
	}
	return &up, nil
}

// Put sends the bytes of an upload to its URL.
func (c *Client) Put(ctx context.Context, up *protocol.UploadURL, data io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, up.Method, c.ResolveURL(up.URL), data)
	if err != nil {
		return err
	}
	req.ContentLength = up.Size
	req.Header.Set("Content-Type", up.ContentType)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("client: upload %s: %w", up.Attachment, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("client: upload %s: HTTP %d: %s", up.Attachment, resp.StatusCode, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// UploadBytes uploads data as one attachment and returns its id.
func (c *Client) UploadBytes(ctx context.Context, contentType, name string, data []byte) (string, error) {
	up, err := c.Upload(ctx, contentType, int64(len(data)), name)
	if err != nil {
		return "", err
	}
	if err := c.Put(ctx, up, bytes.NewReader(data)); err != nil {
		return "", err
	}
	return up.Attachment, nil
}

// Fetch downloads a file of a message (its URL or thumb URL).
func (c *Client) Fetch(ctx context.Context, fileURL string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.ResolveURL(fileURL), nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("client: fetch: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, resp.Header.Get("Content-Type"), nil
}
