package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// recordSize is the aes128gcm record size announced in the header; the
// whole payload is one record, so it only has to be large enough.
const recordSize = 4096

// headerLen is salt(16) || rs(4) || idlen(1) || keyid(65).
const headerLen = 16 + 4 + 1 + 65

// MaxPayload is the largest plaintext that fits in one 4096-byte record
// after the padding delimiter and the AES-GCM tag. Push services accept
// at least 4096 bytes of encrypted body; this stays inside that too.
const MaxPayload = recordSize - headerLen - 16 - 1

// encrypt encrypts plaintext for a subscription (RFC 8291, with the
// aes128gcm content coding of RFC 8188): uaPublic is the subscription's
// p256dh, auth its auth secret. A fresh ephemeral key and salt are drawn
// for every message.
func encrypt(plaintext, uaPublic, auth []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encryptWith(plaintext, uaPublic, auth, as, salt)
}

// encryptWith is encrypt with the ephemeral key and salt given, so the RFC's
// example can be reproduced byte for byte.
func encryptWith(plaintext, uaPublic, auth []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plaintext) > MaxPayload {
		return nil, fmt.Errorf("payload of %d bytes, at most %d fit", len(plaintext), MaxPayload)
	}
	if len(auth) != 16 {
		return nil, fmt.Errorf("auth secret of %d bytes, want 16", len(auth))
	}
	if len(salt) != 16 {
		return nil, errors.New("salt must be 16 bytes")
	}
	ua, err := ecdh.P256().NewPublicKey(uaPublic)
	if err != nil {
		return nil, fmt.Errorf("p256dh: %w", err)
	}
	secret, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPublic := as.PublicKey().Bytes()

	// RFC 8291 3.4: IKM = HKDF(auth, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
	keyInfo := "WebPush: info\x00" + string(uaPublic) + string(asPublic)
	prkKey, err := hkdf.Extract(sha256.New, secret, auth)
	if err != nil {
		return nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prkKey, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	// RFC 8188 2.2 and 2.3: CEK and NONCE from the salt and IKM.
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}

	out := make([]byte, headerLen, headerLen+len(plaintext)+1+gcm.Overhead())
	copy(out, salt)
	binary.BigEndian.PutUint32(out[16:], recordSize)
	out[20] = byte(len(asPublic))
	copy(out[21:], asPublic)
	// The only, hence last, record: the plaintext and the 0x02 delimiter,
	// no further padding (RFC 8188 2).
	record := append(append(make([]byte, 0, len(plaintext)+1), plaintext...), 0x02)
	return gcm.Seal(out, nonce, record, nil), nil
}
