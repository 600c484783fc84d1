module github.com/thesystem-dev/thesystem

go 1.26

require (
	github.com/Masterminds/semver/v3 v3.4.0
	gopkg.in/yaml.v3 v3.0.1
)
