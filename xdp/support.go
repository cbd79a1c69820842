package xdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/minerguard/minerguard/internal/caps"
)

// ErrUnsupported is wrapped by Open's error when BPF or XDP cannot be used on this host;
// the message names what is missing and what to do. The sensor then runs flag-only.
var ErrUnsupported = errors.New("xdp enforcement unsupported")

// ErrNotSupported is ErrUnsupported under the name the style guide uses.
var ErrNotSupported = ErrUnsupported

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// checkSupport names the first missing capability or kernel feature.
func checkSupport() error {
	if !caps.Have(caps.BPF) && !caps.Have(caps.SysAdmin) {
		return unsupported("no CAP_BPF or CAP_SYS_ADMIN: run the sensor as root or grant CAP_BPF (kernel >= 5.8) or CAP_SYS_ADMIN")
	}
	if !caps.Have(caps.NetAdmin) {
		return unsupported("no CAP_NET_ADMIN (needed to attach XDP): grant CAP_NET_ADMIN to the sensor")
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return unsupported("raising RLIMIT_MEMLOCK: %v (grant CAP_SYS_RESOURCE or raise the limit)", err)
	}
	if err := features.HaveProgramType(ebpf.XDP); err != nil {
		return featureErr("XDP programs", err)
	}
	if err := features.HaveMapType(ebpf.LPMTrie); err != nil {
		return featureErr("LPM trie maps", err)
	}
	if err := features.HaveMapType(ebpf.PerCPUArray); err != nil {
		return featureErr("per-CPU array maps", err)
	}
	return nil
}

func featureErr(what string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) {
		return unsupported("kernel lacks %s: upgrade to Linux >= 5.9 (BPF links for XDP)", what)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return unsupported("probing %s: %v: the BPF syscall is denied (seccomp or LSM?); run the sensor with CAP_BPF and an unconfined seccomp profile", what, err)
	}
	return fmt.Errorf("probing %s: %w", what, err)
}

const bpffsRoot = "/sys/fs/bpf"

func isBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && uint32(st.Type) == unix.BPF_FS_MAGIC
}

// ensurePinDir mounts bpffs at /sys/fs/bpf when missing and creates the pin directories.
func ensurePinDir(pinPath string) error {
	if !isBPFFS(bpffsRoot) {
		if err := os.MkdirAll(bpffsRoot, 0o700); err != nil {
			return unsupported("no bpffs at %s and cannot create it: %v: mount one (mount -t bpf bpf %s)", bpffsRoot, err, bpffsRoot)
		}
		if err := unix.Mount("bpf", bpffsRoot, "bpf", 0, "mode=0700"); err != nil {
			return unsupported("no bpffs at %s and mounting it failed: %v: mount one (mount -t bpf bpf %s) or give the sensor the host's /sys/fs/bpf", bpffsRoot, err, bpffsRoot)
		}
	}
	if err := os.MkdirAll(filepath.Join(pinPath, "links"), 0o700); err != nil {
		return fmt.Errorf("creating pin directory: %w", err)
	}
	if !isBPFFS(pinPath) {
		return unsupported("pin path %s is not on a bpffs: choose a path under %s", pinPath, bpffsRoot)
	}
	return nil
}
