package workload

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Docker Compose labels on every container of a compose project.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
)

// Docker defaults.
const (
	DefaultDockerSocket  = "/var/run/docker.sock"
	DefaultDockerTimeout = 2 * time.Second
)

// dockerBackoff is how long Docker stays silent after the daemon failed to answer: a daemon
// that is down or hung then costs one timeout per interval, not one per namespace.
const dockerBackoff = 10 * time.Second

// maxInspect bounds a container inspect body; real ones are a few KiB (env, mounts).
const maxInspect = 4 << 20

// Docker names a namespace from the Docker Engine API (GET /containers/ID/json on the unix
// socket) for the container its processes run in: a compose service
// ("compose/PROJECT/SERVICE"), a Kubernetes pod created through dockershim or cri-dockerd
// ("k8s/NAMESPACE/KIND/NAME"), or the image repository ("image/REPO", tag and digest
// stripped, so every container of an image shares a profile). It answers false when the
// process is in no container, the container is not Docker's, or the daemon does not answer
// within Timeout. Answers are cached per container ID. Use a pointer; the zero value uses the
// defaults and is safe for concurrent use.
type Docker struct {
	Socket  string        // default DefaultDockerSocket
	Timeout time.Duration // per request; default DefaultDockerTimeout

	once      sync.Once
	client    *http.Client
	cache     idCache
	downUntil atomic.Int64 // unix nanoseconds; no queries before
	now       func() time.Time
}

func (d *Docker) init() {
	d.once.Do(func() {
		sock := d.Socket
		if sock == "" {
			sock = DefaultDockerSocket
		}
		if d.now == nil {
			d.now = time.Now
		}
		var dialer net.Dialer
		d.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", sock)
			},
			MaxIdleConns:    2,
			IdleConnTimeout: 30 * time.Second,
		}}
	})
}

func (d *Docker) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultDockerTimeout
}

// Resolve implements Resolver.
func (d *Docker) Resolve(ns NetnsInfo) (Identity, bool) {
	info, _, ok := containerOf(ns)
	if !ok {
		return Identity{}, false
	}
	switch info.Runtime {
	case RuntimeContainerd, RuntimeCRIO:
		return Identity{}, false // another runtime's container: Docker cannot know it
	}
	if a, ok := d.cache.get(info.ContainerID); ok {
		return a.id, a.ok
	}
	d.init()
	if d.now().UnixNano() < d.downUntil.Load() {
		return Identity{}, false
	}
	c, err := d.inspect(info.ContainerID)
	switch {
	case errors.Is(err, errNoSuchContainer):
		d.cache.put(info.ContainerID, answer{})
		return Identity{}, false
	case err != nil:
		d.downUntil.Store(d.now().Add(dockerBackoff).UnixNano())
		return Identity{}, false
	}
	id := dockerIdentity(info, c)
	d.cache.put(info.ContainerID, answer{id: id, ok: true})
	id.Labels = maps.Clone(id.Labels) // the caller owns its copy, the cache keeps its own
	return id, true
}

// dockerContainer is the part of the Engine API's ContainerInspectResponse we use.
type dockerContainer struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
}

var errNoSuchContainer = errors.New("no such container")

func (d *Docker) inspect(id string) (dockerContainer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout())
	defer cancel()
	// Unversioned: the daemon answers with its own API version, and pinning one would break
	// against daemons that raised their minimum.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/containers/"+id+"/json", nil)
	if err != nil {
		return dockerContainer{}, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return dockerContainer{}, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxInspect)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		_, _ = io.Copy(io.Discard, body) // keep the connection reusable
		return dockerContainer{}, errNoSuchContainer
	default:
		return dockerContainer{}, errors.New("docker: " + resp.Status)
	}
	var c dockerContainer
	if err := json.NewDecoder(body).Decode(&c); err != nil {
		return dockerContainer{}, err
	}
	return c, nil
}

// dockerIdentity names a container: compose labels first (they name the service, stable
// across recreations), then the pod labels kubelet sets through dockershim, then the image.
func dockerIdentity(info CgroupInfo, c dockerContainer) Identity {
	labels := c.Config.Labels
	id := Identity{
		Kind:          KindDocker,
		Container:     info.ContainerID,
		ContainerName: strings.TrimPrefix(c.Name, "/"),
		Image:         c.Config.Image,
		Labels:        boundLabels(labels),
		Source:        SourceDocker,
	}
	if p, s := labels[LabelComposeProject], labels[LabelComposeService]; p != "" && s != "" {
		id.Name, id.Kind = "compose/"+p+"/"+s, KindCompose
		return id
	}
	if pod, ok := PodFromLabels(labels); ok {
		kind, name := GuessOwner(pod.Name)
		id.Name, id.Kind = "k8s/"+pod.Namespace+"/"+kind+"/"+name, KindKubernetes
		id.Pod, id.Namespace = pod.Name, pod.Namespace
		if pod.Container != "" {
			id.ContainerName = pod.Container // the spec's name, not dockershim's k8s_... name
		}
		return id
	}
	if repo := ImageRepository(c.Config.Image); repo != "" {
		id.Name = "image/" + repo
		return id
	}
	// Started from an image ID: nothing shared between replicas is known.
	id.Name = "container/" + info.ShortID()
	return id
}

// ImageRepository returns an image reference without tag and digest:
// "registry.example:5000/team/api:1.2@sha256:..." is "registry.example:5000/team/api". It
// returns "" for an image ID ("sha256:...", or 64 hex digits), which names no repository.
func ImageRepository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	// A ':' after the last '/' starts the tag; one before it is a registry port.
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && i > strings.LastIndexByte(ref, '/') {
		if ref[:i] == "sha256" {
			return ""
		}
		ref = ref[:i]
	}
	if isContainerID(ref) {
		return ""
	}
	return ref
}
