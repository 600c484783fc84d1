package cli

import (
	"fmt"
	"path/filepath"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// loadConfig finds and loads thesystem.yaml the way every command does:
// --config, else $THESYSTEM_CONFIG, else discovery from the working
// directory up to the git root, else the defaults. Warnings go to stderr.
func loadConfig(env *Env, g *globals) (*config.Loaded, error) {
	if g.loaded != nil {
		return g.loaded, nil
	}
	wd, err := env.getwd()
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	path := g.configPath
	if path == "" {
		path, _ = env.lookup("THESYSTEM_CONFIG")
	}
	if path == "" {
		if path, err = config.Discover(wd); err != nil {
			return nil, err
		}
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(wd, path)
	}
	opt := config.Options{LookupEnv: env.lookup}
	var l *config.Loaded
	if path == "" {
		l, err = config.Load("", config.ProjectDir(wd), opt)
	} else {
		l, err = config.Load(displayPath(env, path), "", opt)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range l.Warnings {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	g.loaded = l
	return l, nil
}
