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
		"THESYSTEM_LOG=debug",
		"THESYSTEM_DEPLOY_KEY=abc",
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
	want := []string{"AGENTCHAT_URL=ws://x", "ANTHROPIC_MODEL=claude-x", "CLAUDE_CODE_MAX_TURNS=5", "THESYSTEM_LOG=debug"}
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
		"ANTHROPIC_API_KEY":       "a secret's name",
		"ANTHROPIC_AUTH_TOKEN":    "a secret's name",
		"CLAUDE_CODE_OAUTH_TOKEN": "a secret's name",
		"THESYSTEM_DEPLOY_KEY":    "named like a secret",
		"AGENTCHAT_NOTE":          "its value looks like a Anthropic key (sk-ant-…)",
	} {
		if reasons[name] != want {
			t.Errorf("%s: %q, want %q", name, reasons[name], want)
		}
	}
	if _, listed := reasons["OPENAI_API_KEY"]; listed {
		t.Error("names outside the allowlist are not even reported")
	}
}
