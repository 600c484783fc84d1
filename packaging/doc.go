// Package packaging holds how TheSystem ships: the .app bundle assembly
// (mkapp), signing (sign, with entitlements.plist), the disk image (dmg),
// the icon generator (icon/). Its test builds a bundle and checks it.
package packaging
