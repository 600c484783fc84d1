// Command echotask is the agents' stand-in runtime in the stack tests: run
// by the agent's chat loop as `claude -p …` with the task on stdin, it
// answers with its arguments and the task, as /bin/echo answered when the
// task was an argument.
package main

import (
	"io"
	"os"
	"strings"
)

func main() {
	task, _ := io.ReadAll(os.Stdin)
	_, _ = os.Stdout.WriteString(strings.Join(append(os.Args[1:], string(task)), " ") + "\n")
}
