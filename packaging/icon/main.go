// Command icon draws TheSystem's app icon and writes it as an .icns file
// (PNG entries at 128, 256 and 512 px): no image file is committed, the
// bundle build makes it.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

// draw paints the icon at size: a dark rounded square with three linked
// dots, the team.
func draw(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	r := s * 0.22 // corner radius
	dots := [][2]float64{{0.5, 0.3}, {0.3, 0.66}, {0.7, 0.66}}
	for y := range size {
		for x := range size {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			if !inRoundedSquare(fx, fy, s*0.06, s*0.94, r) {
				continue
			}
			t := fy / s
			c := color.NRGBA{uint8(22 + 20*t), uint8(28 + 24*t), uint8(48 + 40*t), 255}
			for i, d := range dots {
				dx, dy := fx-d[0]*s, fy-d[1]*s
				if math.Hypot(dx, dy) < s*0.1 {
					c = []color.NRGBA{{0x30, 0xd1, 0x58, 255}, {0x0a, 0x84, 0xff, 255}, {0xff, 0x9f, 0x0a, 255}}[i]
				}
			}
			for i := range dots {
				a, b := dots[i], dots[(i+1)%len(dots)]
				if distToSegment(fx/s, fy/s, a, b) < 0.012 && c.A == 255 && c.G < 0x80 {
					c = color.NRGBA{0xd0, 0xd4, 0xe0, 255}
				}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func inRoundedSquare(x, y, lo, hi, r float64) bool {
	if x < lo || x > hi || y < lo || y > hi {
		return false
	}
	cx := math.Min(math.Max(x, lo+r), hi-r)
	cy := math.Min(math.Max(y, lo+r), hi-r)
	return math.Hypot(x-cx, y-cy) <= r
}

func distToSegment(x, y float64, a, b [2]float64) float64 {
	vx, vy := b[0]-a[0], b[1]-a[1]
	t := ((x-a[0])*vx + (y-a[1])*vy) / (vx*vx + vy*vy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(x-(a[0]+t*vx), y-(a[1]+t*vy))
}

// icns is the Apple icon format: "icns", the total length, then entries of
// a 4-byte type, a length and PNG data.
func icns() ([]byte, error) {
	var body bytes.Buffer
	for _, e := range []struct {
		typ  string
		size int
	}{{"ic07", 128}, {"ic08", 256}, {"ic09", 512}} {
		var p bytes.Buffer
		if err := png.Encode(&p, draw(e.size)); err != nil {
			return nil, err
		}
		body.WriteString(e.typ)
		_ = binary.Write(&body, binary.BigEndian, uint32(8+p.Len()))
		body.Write(p.Bytes())
	}
	var out bytes.Buffer
	out.WriteString("icns")
	_ = binary.Write(&out, binary.BigEndian, uint32(8+body.Len()))
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: icon <out.icns>")
		os.Exit(2)
	}
	b, err := icns()
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "icon:", err)
		os.Exit(1)
	}
}
