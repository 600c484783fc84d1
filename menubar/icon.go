package menubar

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// stateColors are the status icon's colors.
func stateColors() map[State]color.NRGBA {
	return map[State]color.NRGBA{
		StateStopped:  {0x8e, 0x8e, 0x93, 0xff},
		StateStarting: {0x0a, 0x84, 0xff, 0xff},
		StateHealthy:  {0x30, 0xd1, 0x58, 0xff},
		StateDegraded: {0xff, 0x9f, 0x0a, 0xff},
		StateFailed:   {0xff, 0x45, 0x3a, 0xff},
	}
}

// Icon is the status icon for a state: a 22×22 PNG, a ring around a dot
// in the state's color (an empty ring when stopped).
func Icon(s State) []byte {
	const size = 22
	c, ok := stateColors()[s]
	if !ok {
		c = stateColors()[StateStopped]
	}
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			dx, dy := float64(x)-10.5, float64(y)-10.5
			d := dx*dx + dy*dy
			switch {
			case d <= 10*10 && d >= 8*8: // the ring
				img.SetNRGBA(x, y, c)
			case d <= 5*5 && s != StateStopped: // the dot
				img.SetNRGBA(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // writing to memory cannot fail
	return buf.Bytes()
}
