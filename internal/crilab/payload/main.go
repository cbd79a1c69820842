// Command payload is the one program of the images crilab builds: "pause" is the pod
// sandbox's process (it waits for a signal), "stratum ADDR" the workload, a miner's XMRig
// login to ADDR on a new connection every 300 ms, 200 at most, then it waits as pause does.
// It is built static (CGO_ENABLED=0) so that the image needs nothing else.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// login is what XMRig sends first (as sensor's live tests send it).
const login = `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44wallet","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","algo":["rx/0"]}}` + "\n"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: payload pause | stratum HOST:PORT")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pause":
	case "stratum":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: payload stratum HOST:PORT")
			os.Exit(2)
		}
		// Bounded: the test stops the container once it has its alert.
		for i := 0; i < 200; i++ {
			if err := send(os.Args[2]); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			time.Sleep(300 * time.Millisecond)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	wait()
}

// send logs in once and reads the pool's answer.
func send(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(login)); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// wait returns on SIGTERM or SIGINT; as PID 1 nothing else would stop it but SIGKILL.
func wait() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
