package proxy

import "encoding/json"

// jsonModel returns the top-level "model" string of a JSON object body.
func jsonModel(body []byte) string {
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var v struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.Model
}
