package sandbox

import (
	"fmt"
	"io"
	"path/filepath"

	buildahDefine "github.com/containers/buildah/define"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
)

// BuildImage builds ref from a Containerfile, its directory as the build
// context, writing podman's progress to out. The base image comes from a
// registry where one is reachable, or from the local store (a
// `FROM localhost/…` image) where none is.
func (p *Podman) BuildImage(containerfile, ref string, out io.Writer) error {
	abs, err := filepath.Abs(containerfile)
	if err != nil {
		return err
	}
	opts := types.BuildOptions{BuildOptions: buildahDefine.BuildOptions{
		ContextDirectory: filepath.Dir(abs),
		Output:           ref,
		Out:              out,
		Err:              out,
		ReportWriter:     out,
		PullPolicy:       buildahDefine.PullIfMissing,
		CommonBuildOpts:  &buildahDefine.CommonBuildOptions{},
		Layers:           true,
	}}
	if _, err := images.Build(p.conn, []string{abs}, opts); err != nil {
		return fmt.Errorf("build %s from %s: %w", ref, containerfile, err)
	}
	return nil
}
