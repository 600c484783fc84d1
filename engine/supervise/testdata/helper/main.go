// Command helper is a stand-in component for the supervisor's tests: it
// can listen, print, crash, ignore SIGTERM and leave a child behind.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "", "listen on this TCP address")
	readyAfter := flag.Duration("ready-after", 0, "wait before listening")
	exitAfter := flag.Duration("exit-after", 0, "exit after this long")
	code := flag.Int("code", 1, "exit status for -exit-after")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	child := flag.Bool("child", false, "start a child that ignores SIGTERM")
	lines := flag.Int("print", 0, "print this many lines to stdout and stderr")
	pidfile := flag.String("pidfile", "", "append this process's pid here")
	sleep := flag.Bool("sleep", false, "just sleep (the child)")
	flag.Parse()

	if *pidfile != "" {
		f, err := os.OpenFile(*pidfile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			fmt.Fprintln(f, os.Getpid())
			_ = f.Close()
		}
	}
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if *sleep {
		select {}
	}
	if *child {
		args := []string{"-sleep", "-ignore-term"}
		if *pidfile != "" {
			args = append(args, "-pidfile", *pidfile)
		}
		c := exec.CommandContext(context.Background(), os.Args[0], args...)
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
	}
	for i := range *lines {
		fmt.Println("out line " + strconv.Itoa(i))
		fmt.Fprintln(os.Stderr, "err line "+strconv.Itoa(i))
	}
	if *exitAfter > 0 {
		time.AfterFunc(*exitAfter, func() {
			fmt.Fprintln(os.Stderr, "crashing with status", *code)
			os.Exit(*code)
		})
	}
	if *listen != "" {
		time.Sleep(*readyAfter)
		var lc net.ListenConfig
		ln, err := lc.Listen(context.Background(), "tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(2)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
	}
	select {}
}
