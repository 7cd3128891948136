// Package procfs reads what the tests and benchmarks measure of a process
// from /proc: CPU time, resident memory, its children, its environment.
// It imports nothing of ghost, so that any package's tests can use it.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ on Linux, the unit of /proc/<pid>/stat's times.
const clkTck = 100

// statFields returns the fields of /proc/<pid>/stat after the command
// name: field 3 (state) is [0].
func statFields(pid int) ([]string, error) {
	return statFile(fmt.Sprintf("/proc/%d/stat", pid))
}

func statFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("%s: no command name", path)
	}
	return strings.Fields(s[i+1:]), nil
}

// CPU returns the user plus system CPU time pid has used (every thread).
func CPU(pid int) (time.Duration, error) {
	return cpuOf(fmt.Sprintf("/proc/%d/stat", pid))
}

// TaskCPU returns the user plus system CPU time of thread tid of process
// pid alone (/proc/<tid>/stat would give the whole process's).
func TaskCPU(pid, tid int) (time.Duration, error) {
	return cpuOf(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
}

func cpuOf(path string) (time.Duration, error) {
	f, err := statFile(path)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad utime/stime %q %q", path, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// RSSKB returns VmRSS (or another "Vm" line of /proc/<pid>/status, such
// as "VmHWM") in KiB, or -1.
func RSSKB(pid int, field ...string) int {
	name := "VmRSS:"
	if len(field) > 0 {
		name = field[0] + ":"
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// ChildPID returns a child process of ppid (varnishd's cache-main for its
// manager), or 0.
func ChildPID(ppid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := statFields(pid); err == nil && len(f) >= 2 && f[1] == strconv.Itoa(ppid) {
			return pid
		}
	}
	return 0
}

// Environ returns the environment of pid, space separated.
func Environ(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// Comm returns the command name of pid.
func Comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// LoadAvg is the first three fields of /proc/loadavg.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// SelfCPU returns the user plus system CPU time this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Stopped reports whether every thread of pid is stopped (state T or t
// in /proc/<pid>/task/<tid>/stat), and the state of each thread
// ("tid:S ...") to explain a false. kill(SIGSTOP) returns as soon as the
// signal is queued: the threads of a multi-threaded process go on
// running until one of them takes the signal and the group stop reaches
// the others, milliseconds later on a loaded machine.
func Stopped(pid int) (bool, string) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, err.Error()
	}
	all := len(ents) > 0
	var states []string
	for _, e := range ents {
		f, err := statFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, e.Name()))
		if err != nil || len(f) == 0 {
			continue // the thread ended meanwhile
		}
		if f[0] != "T" && f[0] != "t" {
			all = false
		}
		states = append(states, e.Name()+":"+f[0])
	}
	return all, strings.Join(states, " ")
}
