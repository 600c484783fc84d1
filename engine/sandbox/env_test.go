package sandbox

import (
	"strings"
	"testing"
)

func TestForwardEnv(t *testing.T) {
	const planted = "sk-ant-api03-PLANTEDenvKEY0123456789abcdef"
	in := []string{
		"ANTHROPIC_MODEL=claude-x",
		"ANTHROPIC_API_KEY=" + planted,
		"ANTHROPIC_AUTH_TOKEN=whatever",
		"CLAUDE_CODE_OAUTH_TOKEN=oauth",
		"CLAUDE_CODE_MAX_TURNS=5",
		"THESYSTEM_AGENT_LOG=debug",
		// The engine's own settings describe the host: never forwarded.
		"THESYSTEM_STATE_DIR=/home/alice/.local/state/thesystem", "THESYSTEM_PODMAN_ARGS=--root /home/alice/x",
		"THESYSTEM_AGENT_DEPLOY_KEY=abc",
		"AGENTCHAT_URL=ws://x",
		"AGENTCHAT_NOTE=" + planted, // a key hiding in an allowed name
		"OPENAI_API_KEY=sk-proj-PLANTEDopenaiKEY0123456789",
		"GITHUB_TOKEN=ghp_PLANTEDPLANTEDPLANTEDPLANTED",
		"PATH=/usr/bin",
		"HOME=/root",
		"AWS_SECRET_ACCESS_KEY=PLANTED",
		"malformed",
	}
	kept, dropped := ForwardEnv(in)
	want := []string{"AGENTCHAT_URL=ws://x", "ANTHROPIC_MODEL=claude-x", "CLAUDE_CODE_MAX_TURNS=5", "THESYSTEM_AGENT_LOG=debug"}
	if strings.Join(kept, " ") != strings.Join(want, " ") {
		t.Errorf("kept %v, want %v", kept, want)
	}
	if strings.Contains(strings.Join(kept, " "), "PLANTED") {
		t.Fatal("a key crossed")
	}
	reasons := map[string]string{}
	for _, d := range dropped {
		reasons[d.Name] = d.Reason
		if strings.Contains(d.Reason, "PLANTED") {
			t.Errorf("a reason repeats the value: %v", d)
		}
	}
	for name, want := range map[string]string{
		"ANTHROPIC_API_KEY":          "a secret's name",
		"ANTHROPIC_AUTH_TOKEN":       "a secret's name",
		"CLAUDE_CODE_OAUTH_TOKEN":    "a secret's name",
		"THESYSTEM_AGENT_DEPLOY_KEY": "named like a secret",
		"AGENTCHAT_NOTE":             "its value looks like a Anthropic key (sk-ant-…)",
	} {
		if reasons[name] != want {
			t.Errorf("%s: %q, want %q", name, reasons[name], want)
		}
	}
	if _, listed := reasons["OPENAI_API_KEY"]; listed {
		t.Error("names outside the allowlist are not even reported")
	}
}

// TestForwardEnvSecrets: each way a secret could cross under an allowed
// prefix is held back, by name only.
func TestForwardEnvSecrets(t *testing.T) {
	for _, tc := range []struct {
		kv, why string
	}{
		{"ANTHROPIC_CUSTOM_HEADERS=Authorization: Bearer abc", "named like a secret"},
		{"anthropic_api_key=x", "a secret's name"},
		{"Thesystem_Agent_Deploy_Token=x", "named like a secret"},
		{"THESYSTEM_AGENT_DB_PASSWD=x", "named like a secret"},
		{"THESYSTEM_AGENT_SESSION_COOKIE=x", "named like a secret"},
		{"THESYSTEM_AGENT_GCP_CREDENTIALS_JSON={}", "named like a secret"},
		{"THESYSTEM_AGENT_PRIVATE=x", "named like a secret"},
		{"THESYSTEM_AGENT_BASIC_AUTH=x", "named like a secret"},
		{"THESYSTEM_AGENT_KEYRING_SERVICE=x", "named like a secret"},
		{"THESYSTEM_AGENT_MIRROR=https://user:hunter2@mirror.example/repo", "its value is a URL with credentials"},
		{"AGENTCHAT_REMOTE=wss://ghp_abc@chat.example", "its value is a URL with credentials"},
		{"THESYSTEM_AGENT_NOTE=-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----", "its value holds a private key"},
		{"THESYSTEM_AGENT_NOTE=sk-ant-api03-PLANTEDenvKEY0123456789abcdef", "its value looks like a Anthropic key (sk-ant-…)"},
	} {
		name, value, _ := strings.Cut(tc.kv, "=")
		t.Run(name, func(t *testing.T) {
			kept, dropped := ForwardEnv([]string{tc.kv})
			if len(kept) != 0 || len(dropped) != 1 || dropped[0].Reason != tc.why || dropped[0].Name != name {
				t.Fatalf("kept %q, dropped %+v; want it dropped as %q", kept, dropped, tc.why)
			}
			if strings.Contains(dropped[0].Reason, value) {
				t.Error("the reason repeats the value")
			}
		})
	}
	// What is safe still crosses.
	ok := []string{"ANTHROPIC_MODEL=claude-x", "CLAUDE_CODE_MAX_OUTPUT_TOKENS=8000", "THESYSTEM_AGENT_URL=https://example.com/a@b", "AGENTCHAT_URL=ws://127.0.0.1:6667"}
	if kept, dropped := ForwardEnv(ok); len(kept) != len(ok) || len(dropped) != 0 {
		t.Errorf("kept %q, dropped %+v", kept, dropped)
	}
}
