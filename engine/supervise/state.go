package supervise

import "time"

// State is where a component is in its life.
type State string

// States.
const (
	StateStopped    State = "stopped"
	StateStarting   State = "starting"   // running, not yet ready
	StateHealthy    State = "healthy"    // ready, live
	StateDegraded   State = "degraded"   // running, its liveness probe failing
	StateRestarting State = "restarting" // waiting out the backoff after a crash
	StateFailed     State = "failed"     // crash-looped or failed for good; see LastError
	StateStopping   State = "stopping"
)

// ComponentStatus is one component's state, as published.
type ComponentStatus struct {
	Name  string    `json:"name"`
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// Restarts counts every restart in the supervisor's life; Crashes the
	// consecutive ones, reset after a stable uptime.
	Restarts  int    `json:"restarts"`
	Crashes   int    `json:"crashes"`
	LastError string `json:"last_error,omitempty"`
	Detail    string `json:"detail,omitempty"`
	PID       int    `json:"pid,omitempty"`
	Ports     []int  `json:"ports,omitempty"`
	// LastLines are the component's last log lines when it failed.
	LastLines []string `json:"last_lines,omitempty"`
}

// Snapshot is every component's status at one instant, in start order.
type Snapshot struct {
	Seq        uint64            `json:"seq"`
	Time       time.Time         `json:"time"`
	Components []ComponentStatus `json:"components"`
}
