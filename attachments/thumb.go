package attachments

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
)

// maxThumbPixels bounds the images a thumbnail is made of: decoding
// allocates 4 bytes a pixel (a 40 megapixel photo is 160 MiB).
const maxThumbPixels = 40_000_000

// makeThumb stores a thumbnail of the image at id, no larger than
// ThumbSize on its longer side, in the image's own format; it reports
// whether it did. An image it cannot decode gets none: the file is still
// a valid attachment.
func (s *Service) makeThumb(ctx context.Context, id, contentType string) bool {
	data, err := s.thumb(ctx, id, contentType)
	if err == nil {
		err = s.store.Put(ctx, ThumbKey(id), contentType, data)
	}
	if err != nil {
		s.cfg.Logger.Info("no thumbnail for an image", "attachment", id, "err", err)
		return false
	}
	return true
}

func (s *Service) thumb(ctx context.Context, id, contentType string) ([]byte, error) {
	r, err := s.store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	src, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxThumbSource))
	if err != nil {
		return nil, err
	}
	return Thumbnail(src, contentType, s.cfg.ThumbSize)
}

// Thumbnail scales the JPEG or PNG image src down to at most size pixels
// on its longer side (never up) and encodes it in the same format.
func Thumbnail(src []byte, contentType string, size int) ([]byte, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	if cfg.Width*cfg.Height > maxThumbPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, errTooManyPixels
	}
	var img image.Image
	if contentType == "image/png" {
		img, err = png.Decode(bytes.NewReader(src))
	} else {
		img, err = jpeg.Decode(bytes.NewReader(src))
	}
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > size || h > size {
		if w >= h {
			w, h = size, max(1, h*size/w)
		} else {
			w, h = max(1, w*size/h), size
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	var out bytes.Buffer
	if contentType == "image/png" {
		err = png.Encode(&out, dst)
	} else {
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: 80})
	}
	return out.Bytes(), err
}
