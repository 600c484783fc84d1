package chat

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"regexp"
	"strconv"
)

// Message types of the agentchat protocol subset this server speaks.
const (
	TypeIdentify       = "IDENTIFY"
	TypeVerifyIdentity = "VERIFY_IDENTITY"
	TypeJoin           = "JOIN"
	TypeLeave          = "LEAVE"
	TypeMsg            = "MSG"
	TypeListChannels   = "LIST_CHANNELS"
	TypeListAgents     = "LIST_AGENTS"
	TypePing           = "PING"
	// TheSystem's own: an admin changes the allowlist (Options.Admins).
	TypeAdmit  = "ADMIT"
	TypeRevoke = "REVOKE"
	// TheSystem's own: a client says what it is doing (an agent: idle,
	// working on a task, how many queued); the observers get it.
	TypeStatus = "STATUS"

	TypeWelcome     = "WELCOME"
	TypeChallenge   = "CHALLENGE"
	TypeJoined      = "JOINED"
	TypeLeft        = "LEFT"
	TypeAgentJoined = "AGENT_JOINED"
	TypeAgentLeft   = "AGENT_LEFT"
	TypeChannels    = "CHANNELS"
	TypeAgents      = "AGENTS"
	TypePong        = "PONG"
	TypeError       = "ERROR"
	TypeAdmitted    = "ADMITTED"
	TypeRevoked     = "REVOKED"
)

// Error codes, as upstream names them.
const (
	CodeAuthRequired         = "AUTH_REQUIRED"
	CodeChannelNotFound      = "CHANNEL_NOT_FOUND"
	CodeNotInvited           = "NOT_INVITED"
	CodeInvalidMsg           = "INVALID_MSG"
	CodeAgentNotFound        = "AGENT_NOT_FOUND"
	CodeInvalidName          = "INVALID_NAME"
	CodeVerificationFailed   = "VERIFICATION_FAILED"
	CodeVerificationExpired  = "VERIFICATION_EXPIRED"
	CodeRateLimited          = "RATE_LIMITED"
	CodeNotAllowed           = "NOT_ALLOWED"
	maxContent               = 2 << 20
	authSigningContextPrefix = "AGENTCHAT_AUTH"
)

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)
	channelRE = regexp.MustCompile(`^#[a-zA-Z0-9_-]{1,31}$`)
)

// ValidName reports whether s is a valid agent name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidChannel reports whether s is a valid channel name.
func ValidChannel(s string) bool { return channelRE.MatchString(s) }

// inbound is every field a client message may carry.
type inbound struct {
	Type        string  `json:"type"`
	Name        string  `json:"name"`
	Pubkey      string  `json:"pubkey"`
	Channel     string  `json:"channel"`
	To          string  `json:"to"`
	Content     *string `json:"content"`
	ChallengeID string  `json:"challenge_id"`
	Signature   string  `json:"signature"`
	Timestamp   int64   `json:"timestamp"`
	State       string  `json:"state"`
	Task        string  `json:"task"`
	Queued      int     `json:"queued"`
}

// AgentRef names an agent in JOINED and AGENTS lists.
type AgentRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// PubkeyToAgentID is upstream's stable id: the first 16 hex digits of the
// SHA-256 of the PEM text.
func PubkeyToAgentID(pemText string) string {
	sum := sha256.Sum256([]byte(pemText))
	return hex.EncodeToString(sum[:])[:16]
}

// parsePubkey reads an Ed25519 public key in PEM (SPKI) form.
func parsePubkey(pemText string) (ed25519.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return pub, nil
}

// AuthSigningContent is what a client signs to answer a CHALLENGE.
func AuthSigningContent(nonce, challengeID string, timestamp int64) string {
	return authSigningContextPrefix + "|" + nonce + "|" + challengeID + "|" + strconv.FormatInt(timestamp, 10)
}
