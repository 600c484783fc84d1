package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRefreshToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	env := []string{"THESYSTEM_TOKEN_FILE=" + file, "AGENTAUTH_TOKEN=tsa_old", "ANTHROPIC_API_KEY=tsa_old", "OPENAI_API_KEY=tsa_old", "HOME=/tmp"}
	for _, tc := range []struct {
		name, file string // "" file: missing
		want       string
	}{
		{"missing file keeps the env", "", "tsa_old"},
		{"empty file keeps the env", "\n", "tsa_old"},
		{"same token", "tsa_old\n", "tsa_old"},
		{"a new token everywhere the old one was", "tsa_new\n", "tsa_new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(file)
			if tc.file != "" {
				if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := RefreshToken(env)
			want := []string{"THESYSTEM_TOKEN_FILE=" + file, "AGENTAUTH_TOKEN=" + tc.want, "ANTHROPIC_API_KEY=" + tc.want, "OPENAI_API_KEY=" + tc.want, "HOME=/tmp"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("RefreshToken = %q, want %q", got, want)
			}
		})
	}
}
