package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/natter-chat/natter/protocol"
)

// FuzzDecodeRequest feeds arbitrary frames to the decoder every client
// frame goes through. It must never panic; it accepts only UTF-8 with a
// type; and the error it answers, with the salvaged id, must encode.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","id":"h1","token":"eyJ.x.y","device":"phone"}`,
		`{"type":"send","id":"1","conv":"c1","client_id":"m-1","body":{"text":"hi"}}`,
		`{"type":"history","conv":"c1","before":10,"limit":50}`,
		`{"type":"sync","after":{"c1":3}}`,
		`{"type":"edit","conv":"c1","ref":4,"client_id":"e","body":{"text":"\u2028"}}`,
		`{"type":"mute","conv":"c1","until":"2026-01-01T00:00:00Z"}`,
		`{"type":"block","id":"b1","user":"mallory"}`,
		`{"type":"unblock","user":["not","a","string"]}`,
		`{"type":"blocked","id":"b2"}`,
		`{"type":"reauth","id":"a1","token":"eyJ.x.y"}`,
		`{"type":"reauth","token":17}`,
		`{"type":"accept","id":"a1","conv":"d_x"}`,
		`{"type":"decline","id":"a2","conv":"g_y"}`,
		`{"type":"hide","id":"a3","conv":"g_y"}`,
		`{"type":"settings","id":"a4"}`,
		`{"type":"settings","id":"a5","add_policy":"nobody"}`,
		`{"type":"settings","add_policy":7}`,
		`{"type":"send","id":"x","limit":"not a number"}`,
		`{"type":"send","id":"2","conv":"c1","client_id":"m-2","kind":"edit","ref":4,"reply_to":3,"thread":2,"resend":true,"body":{"text":"x"}}`,
		`{"type":"send","id":"3","conv":"c1","client_id":"m-3","ref":-1,"body":{}}`,
		`{"type":"send","id":"4","conv":"c1","client_id":"m-4","ref":1.5,"body":{}}`,
		`{"type":"send","id":"5","conv":"c1","client_id":"m-5","body":"not an object"}`,
		`{"type":"read","id":"r1","conv":"d_x","seq":17}`,
		`{"type":"delivered","conv":"d_x","seq":-1}`,
		`{"type":"typing","conv":"d_x"}`,
		`{"type":"ping","id":"p1"}`,
		`{"Type":"ping"}`,
		`{"id":"no-type"}`,
		`{"type":""}`,
		`{"type":null,"id":7}`,
		`[1,2,3]`,
		`null`,
		"{\"type\":\"send\",\"id\":\"\xff\"}",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req protocol.Request
		perr := decodeRequest(data, &req)
		// The decoder without encoding/json's reflection answers
		// exactly as the one before it did: the same request, the same
		// error.
		var old protocol.Request
		operr := decodeRequestJSON(data, &old)
		if !reflect.DeepEqual(req, old) || !reflect.DeepEqual(perr, operr) {
			t.Fatalf("decodeRequest(%q) = %#v, %v; with encoding/json %#v, %v", data, req, perr, old, operr)
		}
		id := salvageID(data)
		if !utf8.Valid(data) {
			if perr == nil {
				t.Fatalf("accepted invalid UTF-8 %q", data)
			}
			if id != "" {
				t.Fatalf("salvaged id %q from invalid UTF-8", id)
			}
		}
		if perr != nil {
			if perr.Code != protocol.CodeBadRequest {
				t.Fatalf("error code %q, want bad_request", perr.Code)
			}
			perr.ID = id
			if _, err := json.Marshal(perr); err != nil {
				t.Fatalf("error reply does not encode: %v", err)
			}
			return
		}
		if req.Type == "" {
			t.Fatalf("accepted a frame without type: %q", data)
		}
		if req.ID != id {
			t.Fatalf("salvageID = %q, decoded id = %q", id, req.ID)
		}
		if _, err := json.Marshal(&req); err != nil {
			t.Fatalf("accepted request %q does not re-encode: %v", data, err)
		}
	})
}

// decodeRequestJSON is decodeRequest as it was before protocol.DecodeRequest:
// encoding/json alone.
func decodeRequestJSON(data []byte, req *protocol.Request) *protocol.Error {
	if !utf8.Valid(data) {
		return protocol.Errorf(protocol.CodeBadRequest, "frame is not valid UTF-8")
	}
	if err := json.Unmarshal(data, req); err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "frame is not a JSON object of the protocol: %v", err)
	}
	if req.Type == "" {
		return protocol.Errorf(protocol.CodeBadRequest, "frame has no type")
	}
	return nil
}
