// Package kubetest starts a real kube-apiserver and etcd (controller-runtime's envtest, with
// the binaries `make envtest-assets` builds from Go modules) with minerguard's CRDs installed,
// for the tests of the kubernetes profile backend: the cluster package's, the CLI's and the
// sensor's share one setup instead of copying it.
package kubetest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"

	"github.com/minerguard/minerguard/internal/netnstest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// quiet gives controller-runtime a logger: without one it prints a warning with a goroutine
// dump into the test's output 30 s after envtest first logs, which reads like a failure.
var quiet sync.Once

// Cluster is a running control plane, stopped when the test ends.
type Cluster struct {
	Env    *envtest.Environment // its ControlPlane's API server can be stopped and restarted
	Config *rest.Config
	Dyn    dynamic.Interface
}

// root is the module's directory: tests run in their package's directory, somewhere below it.
func root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// asset is the cached binary deploy/tools/build.sh built (make envtest-assets), or the
// TEST_ASSET_* variable envtest reads when it is set. Missing: SkipReal (a failure in CI).
func asset(t testing.TB, top, tool, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	cmd := exec.Command(filepath.Join(top, "deploy/tools/build.sh"), tool)
	cmd.Env = append(os.Environ(), "MINERGUARD_TOOLS_NO_BUILD=1")
	out, err := cmd.Output()
	if err != nil {
		netnstest.SkipReal(t, "no %s built (make envtest-assets builds it from Go modules): %v", tool, err)
	}
	return strings.TrimSpace(string(out))
}

// Start runs kube-apiserver and etcd with the chart's CRDs (deploy/helm/minerguard/crds)
// until the test ends. Skipped in -short mode and, with a reason, when the binaries are not
// built.
func Start(t *testing.T) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	quiet.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	top := root(t)
	t.Setenv("TEST_ASSET_KUBE_APISERVER", asset(t, top, "kube-apiserver", "TEST_ASSET_KUBE_APISERVER"))
	t.Setenv("TEST_ASSET_ETCD", asset(t, top, "etcd", "TEST_ASSET_ETCD"))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(top, "deploy/helm/minerguard/crds")},
		ErrorIfCRDPathMissing: true,
	}
	// A fixed certificate directory keeps the API server's certificates and port across a
	// restart (ControlPlane.GetAPIServer().Stop/Start), as a real control plane's are.
	api := env.ControlPlane.GetAPIServer()
	api.CertDir = t.TempDir()
	// Stopping closes open watches as a production API server's rollout does; without a
	// grace period the server waits up to a minute for watch streams that never end by
	// themselves, past envtest's stop timeout.
	api.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Env: env, Config: cfg, Dyn: dyn}
}

// Namespace creates a namespace (WorkloadProfiles are namespaced, like their workloads).
func (c *Cluster) Namespace(t testing.TB, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	_, err := c.Dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// Kubeconfig writes a kubeconfig file reaching the API server as the test's admin user (the
// client certificate envtest made), for what takes one as a path: the CLI's --kubeconfig,
// the sensor's profiles.kubeconfig.
func (c *Cluster) Kubeconfig(t testing.TB) string {
	t.Helper()
	rc := c.Config
	if len(rc.CertData) == 0 && rc.BearerToken == "" {
		t.Fatal(errors.New("envtest's config has neither a client certificate nor a token"))
	}
	// rc.Host may lack the scheme; the file needs the whole URL.
	u, _, err := rest.DefaultServerUrlFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: u.String(), CertificateAuthorityData: rc.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData, Token: rc.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
