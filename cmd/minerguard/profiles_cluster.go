package main

import (
	"context"
	"fmt"
	"math"
	"os"

	"github.com/minerguard/minerguard/profile"
	"github.com/minerguard/minerguard/profile/cluster"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// client reaches the cluster of --kubeconfig.
func (f *profilesFlags) client() (dynamic.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", f.kubeconfig, err)
	}
	rc.Timeout = 30 * f.timeout // --lock-timeout (2s) is for a file; a list may take longer
	return dynamic.NewForConfig(rc)
}

// clusterBook is a snapshot of the cluster's profiles for the commands that only read.
func (f *profilesFlags) clusterBook() (*profile.Book, error) {
	c, err := f.client()
	if err != nil {
		return nil, err
	}
	ps, skipped, err := cluster.List(context.Background(), c)
	if err != nil {
		return nil, err
	}
	if skipped > 0 {
		fmt.Fprintf(os.Stderr, "minerguard: %d WorkloadProfiles not readable as profiles were left out\n", skipped)
	}
	b := profile.NewMemory(profile.Config{MaxEntries: math.MaxInt32, MaxIPsPerName: math.MaxInt32, MaxProfiles: math.MaxInt32})
	for _, p := range ps {
		if err := b.Put(p); err != nil {
			return nil, fmt.Errorf("cluster profile: %w", err)
		}
	}
	return b, nil
}

func (f *profilesFlags) clusterSetState(workload string, to profile.State) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	return cluster.SetState(context.Background(), c, workload, to)
}
