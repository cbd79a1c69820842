package cluster

import (
	"context"
	"fmt"

	"github.com/minerguard/minerguard/profile"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
)

// List reads every WorkloadProfile of the cluster (all namespaces, in pages) as profiles, for
// `minerguard profiles --kubeconfig`. Resources the sensor cannot read are skipped and
// counted in skipped.
func List(ctx context.Context, client dynamic.Interface) (ps []profile.Profile, skipped int, err error) {
	opts := metav1.ListOptions{Limit: 200}
	for {
		l, err := client.Resource(GVR).List(ctx, opts)
		if err != nil {
			return nil, 0, errorf("listing WorkloadProfiles: %w", err)
		}
		for i := range l.Items {
			wp, err := decode(&l.Items[i])
			if err != nil || wp.Spec.Workload.Identity == "" {
				skipped++
				continue
			}
			st, err := profile.ParseState(wp.Spec.State)
			if err != nil {
				skipped++
				continue
			}
			p := profile.Profile{Workload: wp.Spec.Workload.Identity, State: st, Entries: entriesOf(&wp.Spec)}
			if wp.Spec.Learning != nil {
				p.Since = parseTime(wp.Spec.Learning.Started)
			}
			for _, d := range wp.Spec.Destinations {
				if t := parseTime(d.FirstSeen); t.After(p.LastNew) {
					p.LastNew = t
				}
			}
			ps = append(ps, p)
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return ps, skipped, nil
		}
	}
}

// SetState edits a workload's resource as an operator would with kubectl edit: to Monitoring
// or Enforcing approves it; to Learning asks the sensors to relearn (they clear the
// destinations and the flag).
func SetState(ctx context.Context, client dynamic.Interface, workload string, to profile.State) error {
	ref, ok := RefOf(workload)
	if !ok {
		return errorf("%s is not a Kubernetes workload (k8s/NAMESPACE/KIND/NAME): its profile is node-local", workload)
	}
	rc := client.Resource(GVR).Namespace(ref.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := rc.Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %w (no WorkloadProfile %s/%s)", workload, profile.ErrNoProfile, ref.Namespace, ref.Name)
		}
		if err != nil {
			return err
		}
		wp, err := decode(u)
		if err != nil {
			return err
		}
		if to == profile.Learning {
			if wp.Spec.Governance == nil {
				wp.Spec.Governance = &Governance{}
			}
			wp.Spec.Governance.Relearn = true
		} else {
			wp.Spec.State = to.String()
		}
		if err := encodeSpec(u, &wp); err != nil {
			return err
		}
		_, err = rc.Update(ctx, u, metav1.UpdateOptions{FieldManager: "minerguard-cli"})
		return err
	})
}
