// Package deploy holds the container images, the Compose stack and the
// Kubernetes manifests. Nothing here runs them, so this test validates them
// structurally: every YAML file parses, the Kubernetes objects follow the
// platform's rules (namespace, probes, memory limits, non-root, a Service and
// a PodDisruptionBudget per Deployment, references that resolve), the
// kustomization lists every manifest, the Compose services are healthchecked
// and depend on services that exist, and the NATS configuration is accepted
// by the real server's parser with sync_interval always. In both Compose and
// Kubernetes each of the seven services and the console runs with
// AID_ENV=production after a migrate step that does too (in Kubernetes a Job
// per release, never the Deployment itself), and holds exactly the keys it
// uses, its own NATS seed (the console: none) and its own database role; the
// console's signing key is its alone and every service trusts its public key
// (validate_web_test.go). Every Kubernetes object also decodes strictly
// into its k8s.io/api type; each Deployment has an autoscaler on CPU and
// consumer lag; the CloudNativePG Cluster, the NATS chart values and the R3
// stream definitions are checked for what production relies on.
package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"gopkg.in/yaml.v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/edubureau/studentaid/internal/devtools/natsdev"
	"github.com/edubureau/studentaid/pkg/config"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// namespace is where every Kubernetes object of the platform lives.
const namespace = "student-aid"

// maxMemoryLimit is the largest memory limit a container may declare (256Mi).
var maxMemoryLimit = big.NewRat(256<<20, 1)

// serviceSpec is one of the platform's services and its default ports
// (docs/architecture.md).
type serviceSpec struct {
	name       string
	grpc, http int
	// keys are the key sets (keyEnv) the service uses.
	keys []string
	// required are settings of its own that production needs, each with the
	// development value production refuses.
	required map[string]string
}

// envPrefix is the prefix of the service's own variables (pkg/config).
func (s serviceSpec) envPrefix() string {
	return strings.ToUpper(strings.ReplaceAll(s.name, "-", "_")) + "_"
}

// platformServices are the seven services every deployment must run, with
// the keys each one's Spec asks for (services/<name>/internal/service: Needs,
// and the application's trail checkpoint key).
var platformServices = []serviceSpec{
	{"application", 9101, 8101, []string{"AID_SEAL_KEYS", "AID_HASH_KEYS", "AID_TRAIL_SIGNING_KEYS"}, nil},
	{"school-review", 9102, 8102, nil, nil},
	{"bureau-review", 9103, 8103, nil, nil},
	{"finance-confirmation", 9104, 8104, []string{"AID_FINANCE_SIGNING_KEYS"}, nil},
	{"payout", 9105, 8105, []string{"AID_SEAL_KEYS", "AID_FINANCE_VERIFY_KEYS"}, nil},
	// It matches people by the application's ID hash: the hashing key only.
	// Its integrity account's development value is
	// services/data-comparison/internal/service.DevIntegrityAccount.
	{"data-comparison", 9106, 8106, []string{"AID_HASH_KEYS"}, map[string]string{"DATA_COMPARISON_INTEGRITY_ACCOUNT": "DEV-INTEGRITY-ACCOUNT"}},
	// It counts persons by the ID hash the events carry: no key.
	{"reporting", 9107, 8107, nil, nil},
}

// requiredServiceEnv must be set for every service; LoadService or the
// connections fail without them (AID_AUTH_PUBLIC_KEYS has no default) or
// the service silently talks to localhost.
var requiredServiceEnv = []string{"DATABASE_URL", "NATS_URL", "AID_AUTH_PUBLIC_KEYS", "AID_AUTH_ISSUER", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// secretServiceEnv must come from a Secret in Kubernetes, never a literal.
var secretServiceEnv = []string{"DATABASE_URL"}

// keyEnv are the key sets (pkg/config.Service.WithKeys, and the trail's
// pkg/config.LoadTrailKeys). Only the services that use one
// (serviceSpec.keys) get it, from a Secret; every other service must not
// have it (production refuses a key a service does not use).
var keyEnv = []string{"AID_SEAL_KEYS", "AID_HASH_KEYS", "AID_TRAIL_SIGNING_KEYS", "AID_FINANCE_SIGNING_KEYS", "AID_FINANCE_VERIFY_KEYS"}

// checkProduction requires a service (or its migrate step, service false)
// to run with AID_ENV=production and, for a service, none of the
// development values production refuses. value returns a variable's
// literal value and whether it is set at all (a Secret's counts as set,
// with an empty value).
func checkProduction(p *problems, where string, s serviceSpec, service bool, value func(name string) (string, bool)) {
	if got, _ := value("AID_ENV"); got != config.EnvProduction {
		p.addf(where, "AID_ENV is %q, want %s: the one switch that refuses development keys, issuer and logins", got, config.EnvProduction)
	}
	if !service {
		return
	}
	if got, _ := value("AID_AUTH_ISSUER"); got == config.DevAuthIssuer {
		p.addf(where, "AID_AUTH_ISSUER is the development issuer %s, which production refuses", got)
	}
	for _, name := range slices.Sorted(maps.Keys(s.required)) {
		switch got, ok := value(name); {
		case !ok:
			p.addf(where, "environment variable %s is not set: production refuses its development value", name)
		case got == s.required[name]:
			p.addf(where, "%s is the development value %q, which production refuses", name, got)
		}
	}
}

// checkKeys reports a key a service needs but lacks, one it has but does
// not use, and (Kubernetes) one not taken from a Secret.
func checkKeys(p *problems, where string, s serviceSpec, has func(name string) bool, fromSecret func(name string) bool) {
	for _, name := range keyEnv {
		needed := slices.Contains(s.keys, name)
		switch {
		case needed && !has(name):
			p.addf(where, "environment variable %s is not set", name)
		case !needed && has(name):
			p.addf(where, "%s gets %s, which it does not use: only the services that use a key may hold it", s.name, name)
		case needed && fromSecret != nil && !fromSecret(name):
			p.addf(where, "%s must come from a Secret (valueFrom.secretKeyRef)", name)
		}
	}
}

// secretPlaceholder is the only value the committed Secret template may hold.
const secretPlaceholder = "REPLACE_ME"

// ---------------------------------------------------------------------------
// The real files.

func TestDeployFiles(t *testing.T) {
	t.Parallel()
	var (
		k8sObjects    []object
		k8sManifests  []string
		kustomization *kustomizationFile
		compose       *composeFile
		database      []object
		natsValues    []document
	)
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs, err := parseDocuments(filepath.ToSlash(p), data)
		if err != nil {
			t.Error(err)
			return nil
		}
		switch dir, base := filepath.Dir(p), filepath.Base(p); {
		case dir == "k8s" && base == "kustomization.yaml":
			k, err := decodeKustomization(docs)
			if err != nil {
				t.Error(err)
				return nil
			}
			kustomization = k
		case dir == "k8s":
			k8sManifests = append(k8sManifests, base)
			objs, errs := decodeObjects(docs)
			reportAll(t, errs)
			k8sObjects = append(k8sObjects, objs...)
		case p == "postgres/cluster.yaml":
			objs, errs := decodeObjects(docs)
			reportAll(t, errs)
			database = objs
		case p == "nats/helm-values.yaml":
			natsValues = docs
		case p == "compose.yaml":
			c, err := decodeCompose(docs)
			if err != nil {
				t.Error(err)
				return nil
			}
			compose = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("kubernetes", func(t *testing.T) {
		if len(k8sObjects) == 0 {
			t.Fatal("no Kubernetes manifests under k8s/")
		}
		reportAll(t, validateKubernetes(k8sObjects, platformServices, platformWeb))
	})
	t.Run("kustomization", func(t *testing.T) {
		if kustomization == nil {
			t.Fatal("k8s/kustomization.yaml is missing")
		}
		reportAll(t, validateKustomization(kustomization, k8sManifests))
	})
	t.Run("compose", func(t *testing.T) {
		if compose == nil {
			t.Fatal("compose.yaml is missing")
		}
		reportAll(t, validateCompose(compose, platformServices, platformWeb))
		reportAll(t, validateComposeBuilds(compose, "."))
	})
	t.Run("nats", func(t *testing.T) {
		reportAll(t, validateNATSConfig("nats/nats.conf"))
	})
	t.Run("nats cluster", func(t *testing.T) {
		if natsValues == nil {
			t.Fatal("nats/helm-values.yaml is missing")
		}
		reportAll(t, validateNATSHelmValues(natsValues))
		files, err := readStreams("nats/streams")
		if err != nil {
			t.Fatal(err)
		}
		reportAll(t, validateStreams(files))
	})
	t.Run("database", func(t *testing.T) {
		reportAll(t, validateDatabase(database, append(slices.Clone(platformServices), webServices(platformWeb)...)))
	})
	t.Run("metrics", func(t *testing.T) {
		if names := exportedMetricNames(); !slices.Contains(names, consumerLagMetric) {
			t.Errorf("pkg/natsx exports no metric %s (it exports %v): the autoscalers scale on it", consumerLagMetric, names)
		}
	})
	t.Run("dockerfile", func(t *testing.T) {
		data, err := os.ReadFile("docker/Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		reportAll(t, validateDockerfile(string(data)))
	})
}

func reportAll(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Error(err)
	}
}

// ---------------------------------------------------------------------------
// Parsing.

// document is one YAML document of a file; source names it in errors.
type document struct {
	source string
	node   *yaml.Node
}

// parseDocuments splits data into its YAML documents, skipping empty ones.
func parseDocuments(source string, data []byte) ([]document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []document
	for i := 1; ; i++ {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
			continue
		}
		if n.Content[0].Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: document %d is not a mapping", source, i)
		}
		docs = append(docs, document{source: fmt.Sprintf("%s#%d", source, i), node: n})
	}
}

// problems collects validation failures, each prefixed with where it is.
type problems struct{ errs []error }

func (p *problems) addf(where, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

// ---------------------------------------------------------------------------
// Kubernetes.

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// object is one Kubernetes manifest; node keeps the document for decoding
// the kind-specific part.
type object struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	source     string
	node       *yaml.Node
}

func (o object) String() string { return fmt.Sprintf("%s (%s %s)", o.source, o.Kind, o.Metadata.Name) }

func decodeObjects(docs []document) ([]object, []error) {
	var objs []object
	var errs []error
	for _, d := range docs {
		var o object
		if err := d.node.Decode(&o); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.source, err))
			continue
		}
		o.source, o.node = d.source, d.node
		objs = append(objs, o)
	}
	return objs, errs
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []yaml.Node       `yaml:"matchExpressions"`
}

// selects reports whether the selector is a plain, non-empty label match
// satisfied by labels.
func (s labelSelector) selects(labels map[string]string) bool {
	return len(s.MatchExpressions) == 0 && selectorMatches(s.MatchLabels, labels)
}

func selectorMatches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		FieldRef        *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type container struct {
	Name    string          `yaml:"name"`
	Image   string          `yaml:"image"`
	Args    []string        `yaml:"args"`
	Ports   []containerPort `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *keyRef `yaml:"configMapRef"`
		SecretRef    *keyRef `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env       []envVar `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	SecurityContext *securityContext `yaml:"securityContext"`
}

// port returns the number of the container port called name.
func (c container) port(name string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// declares reports whether c declares the container port number n.
func (c container) declares(n int) bool {
	return slices.ContainsFunc(c.Ports, func(p containerPort) bool { return p.ContainerPort == n })
}

// resolvePort turns a probe or targetPort (number or port name) into a number.
func (c container) resolvePort(n yaml.Node) (int, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	if v, err := strconv.Atoi(n.Value); err == nil {
		return v, true
	}
	return c.port(n.Value)
}

type deploymentSpec struct {
	Spec struct {
		Replicas *int          `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     struct {
				SecurityContext *securityContext `yaml:"securityContext"`
				Containers      []container      `yaml:"containers"`
				InitContainers  []container      `yaml:"initContainers"`
				Volumes         []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
					ConfigMap *keyRef `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string    `yaml:"name"`
	Port       int       `yaml:"port"`
	TargetPort yaml.Node `yaml:"targetPort"`
}

type serviceObjectSpec struct {
	Spec struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type pdbSpec struct {
	Spec struct {
		MinAvailable   yaml.Node     `yaml:"minAvailable"`
		MaxUnavailable yaml.Node     `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type networkPolicySpec struct {
	Spec struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []yaml.Node   `yaml:"ingress"`
		Egress      []yaml.Node   `yaml:"egress"`
	} `yaml:"spec"`
}

type dataSpec struct {
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

// deployment is a decoded Deployment with where it came from.
type deployment struct {
	object
	deploymentSpec
}

func (d deployment) podLabels() map[string]string { return d.Spec.Template.Metadata.Labels }

// validateKubernetes checks the platform's rules on a set of manifests and
// that each of want and of web has its Deployment, Service and
// PodDisruptionBudget.
func validateKubernetes(objs []object, want []serviceSpec, web []webSpec) []error {
	var p problems
	var (
		deployments []deployment
		jobs        []deployment
		jobTyped    = map[string]*batchv1.Job{}
		hpas        []*autoscalingv2.HorizontalPodAutoscaler
		services    = map[string]serviceObjectSpec{}
		pdbs        []pdbSpec
		configMaps  = map[string]map[string]string{}
		secrets     = map[string]map[string]string{}
		defaultDeny bool
		namespaces  int
		seen        = map[string]string{}
	)
	for _, o := range objs {
		if o.APIVersion == "" {
			p.addf(o.String(), "apiVersion is missing")
		}
		if o.Kind == "" {
			p.addf(o.String(), "kind is missing")
		}
		if o.Metadata.Name == "" {
			p.addf(o.String(), "metadata.name is missing")
		}
		if o.Kind == "Namespace" {
			namespaces++
			if o.Metadata.Name != namespace {
				p.addf(o.String(), "namespace is named %q, want %q", o.Metadata.Name, namespace)
			}
		} else if o.Metadata.Namespace != namespace {
			p.addf(o.String(), "metadata.namespace is %q, want %q", o.Metadata.Namespace, namespace)
		}
		id := o.Kind + "/" + o.Metadata.Name
		if prev, dup := seen[id]; dup {
			p.addf(o.String(), "%s is also defined in %s", id, prev)
		}
		seen[id] = o.source

		typed, err := decodeTyped(o)
		if err != nil {
			p.addf(o.String(), "%v", err)
		}
		switch t := typed.(type) {
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpas = append(hpas, t)
		case *batchv1.Job:
			jobTyped[o.Metadata.Name] = t
		}

		switch o.Kind {
		case "Job":
			// A Job's pod template has a Deployment's shape.
			var j deploymentSpec
			if err = o.node.Decode(&j); err == nil {
				jobs = append(jobs, deployment{o, j})
			}
		case "Deployment":
			var d deploymentSpec
			if err = o.node.Decode(&d); err == nil {
				deployments = append(deployments, deployment{o, d})
			}
		case "Service":
			var s serviceObjectSpec
			if err = o.node.Decode(&s); err == nil {
				services[o.Metadata.Name] = s
			}
		case "PodDisruptionBudget":
			var b pdbSpec
			if err = o.node.Decode(&b); err == nil {
				pdbs = append(pdbs, b)
			}
		case "NetworkPolicy":
			var np networkPolicySpec
			if err = o.node.Decode(&np); err == nil {
				s := np.Spec
				if len(s.PodSelector.MatchLabels) == 0 && len(s.PodSelector.MatchExpressions) == 0 &&
					slices.Contains(s.PolicyTypes, "Ingress") && slices.Contains(s.PolicyTypes, "Egress") &&
					len(s.Ingress) == 0 && len(s.Egress) == 0 {
					defaultDeny = true
				}
			}
		case "ConfigMap":
			var c dataSpec
			if err = o.node.Decode(&c); err == nil {
				configMaps[o.Metadata.Name] = c.Data
			}
		case "Secret":
			var s dataSpec
			if err = o.node.Decode(&s); err == nil {
				secrets[o.Metadata.Name] = s.StringData
				if len(s.Data) > 0 {
					p.addf(o.String(), "a committed Secret must be a template: use stringData placeholders, not data")
				}
				for k, v := range s.StringData {
					if v != secretPlaceholder {
						p.addf(o.String(), "stringData.%s must be the placeholder %q, not a real value", k, secretPlaceholder)
					}
				}
			}
		}
		if err != nil {
			p.addf(o.String(), "%v", err)
		}
	}
	if namespaces != 1 {
		p.addf("k8s", "want exactly one Namespace %q, found %d", namespace, namespaces)
	}
	if !defaultDeny {
		p.addf("k8s", "no default-deny NetworkPolicy (empty podSelector, policyTypes Ingress and Egress, no rules)")
	}

	for _, d := range deployments {
		// A web front end serves HTTP alone and consumes no events.
		isWeb := slices.ContainsFunc(web, func(w webSpec) bool { return w.name == d.Metadata.Name })
		ports := []string{"grpc", "http"}
		if isWeb {
			ports = []string{"http"}
		}
		checkDeployment(&p, d, ports)
		checkReferences(&p, d, configMaps, secrets)
		checkServiceFor(&p, d, deployments, services, ports)
		checkPDBFor(&p, d, deployments, pdbs)
		checkHPAFor(&p, d, hpas, !isWeb)
	}
	for _, j := range jobs {
		checkJob(&p, j)
		checkReferences(&p, j, configMaps, secrets)
	}
	checkAdapterRules(&p, hpas, configMaps)
	for _, s := range want {
		i := slices.IndexFunc(deployments, func(d deployment) bool { return d.Metadata.Name == s.name })
		if i < 0 {
			p.addf("k8s", "no Deployment for service %s", s.name)
			continue
		}
		checkServiceEnv(&p, deployments[i], s, configMaps)
		checkDatabaseLogins(&p, deployments[i])
		checkMigrateJob(&p, deployments[i], s, jobs, jobTyped, configMaps)
		for _, w := range web {
			checkTrustsWebKey(&p, deployments[i], w, configMaps, secrets)
		}
	}
	for _, w := range web {
		i := slices.IndexFunc(deployments, func(d deployment) bool { return d.Metadata.Name == w.name })
		if i < 0 {
			p.addf("k8s", "no Deployment for %s", w.name)
			continue
		}
		checkWebEnv(&p, deployments[i], w, deployments, configMaps, secrets, services)
		checkDatabaseLogins(&p, deployments[i])
		checkMigrateJob(&p, deployments[i], w.service(), jobs, jobTyped, configMaps)
	}
	return p.errs
}

// secretKey is the Secret key an environment variable of c comes from ("" if
// none).
func (c container) secretKey(name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return ""
}

// hasEnv reports whether c sets the variable name itself.
func (c container) hasEnv(name string) bool {
	return slices.ContainsFunc(c.Env, func(e envVar) bool { return e.Name == name })
}

// checkDatabaseLogins requires each service to log in as its own role (its
// own Secret key, <SERVICE>_DATABASE_URL); its schema is migrated by a Job
// (checkMigrateJob).
func checkDatabaseLogins(p *problems, d deployment) {
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return
	}
	c := pod.Containers[0]
	if key, want := c.secretKey("DATABASE_URL"), (serviceSpec{name: d.Metadata.Name}).envPrefix()+"DATABASE_URL"; key != "" && !strings.HasSuffix(key, "/"+want) {
		p.addf(d.String(), "DATABASE_URL comes from %s: want the service's own role's key %s", key, want)
	}
}

// checkDeployment checks d's replicas, selector and containers: the first
// (the program itself) exposes ports (grpc and http, or http alone for a web
// front end) with its probes on http; a sidecar beside it probes a port of
// its own.
func checkDeployment(p *problems, d deployment, ports []string) {
	where := d.String()
	if r := d.Spec.Replicas; r == nil || *r < 2 {
		p.addf(where, "spec.replicas must be at least 2")
	}
	if !d.Spec.Selector.selects(d.podLabels()) {
		p.addf(where, "spec.selector.matchLabels %v does not match the pod template labels %v", d.Spec.Selector.MatchLabels, d.podLabels())
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		p.addf(where, "no containers")
	}
	all := append(slices.Clone(pod.Containers), pod.InitContainers...)
	for i, c := range all {
		cw := fmt.Sprintf("%s container %q", where, c.Name)
		checkContainerSecurity(p, cw, c, pod.SecurityContext)
		if i >= len(pod.Containers) {
			continue // init containers take no probes
		}
		if i > 0 {
			checkSidecarProbe(p, cw, "readinessProbe", c.ReadinessProbe, "/readyz", c)
			checkSidecarProbe(p, cw, "livenessProbe", c.LivenessProbe, "/healthz", c)
			continue
		}
		for _, name := range ports {
			if _, ok := c.port(name); !ok {
				p.addf(cw, "no container port named %s", name)
			}
		}
		httpPort, _ := c.port("http")
		checkProbe(p, cw, "readinessProbe", c.ReadinessProbe, "/readyz", c, httpPort)
		checkProbe(p, cw, "livenessProbe", c.LivenessProbe, "/healthz", c, httpPort)
	}
}

// checkContainerSecurity checks a container's image tag, memory, and that it
// runs as non-root (its own or the pod's setting) with a read-only root
// filesystem and no privilege escalation.
func checkContainerSecurity(p *problems, cw string, c container, podSC *securityContext) {
	checkImage(p, cw, c.Image)
	checkMemory(p, cw, c)
	nonRoot := podSC != nil && podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot
	if sc := c.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		p.addf(cw, "runAsNonRoot is not true")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.addf(cw, "securityContext.readOnlyRootFilesystem is not true")
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.addf(cw, "securityContext.allowPrivilegeEscalation is not false")
	}
}

func checkImage(p *problems, where, image string) {
	if image == "" {
		p.addf(where, "no image")
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash || image[colon+1:] == "latest" {
		p.addf(where, "image %q needs a version tag (not latest)", image)
	}
}

func checkMemory(p *problems, where string, c container) {
	limitText, ok := c.Resources.Limits["memory"]
	if !ok {
		p.addf(where, "no resources.limits.memory")
		return
	}
	limit, err := parseQuantity(limitText)
	if err != nil {
		p.addf(where, "resources.limits.memory: %v", err)
		return
	}
	if limit.Cmp(maxMemoryLimit) > 0 {
		p.addf(where, "memory limit %s exceeds 256Mi", limitText)
	}
	reqText, ok := c.Resources.Requests["memory"]
	if !ok {
		p.addf(where, "no resources.requests.memory")
		return
	}
	req, err := parseQuantity(reqText)
	if err != nil {
		p.addf(where, "resources.requests.memory: %v", err)
		return
	}
	if req.Cmp(limit) > 0 {
		p.addf(where, "memory request %s exceeds its limit %s", reqText, limitText)
	}
	if _, ok := c.Resources.Requests["cpu"]; !ok {
		p.addf(where, "no resources.requests.cpu")
	}
}

func checkProbe(p *problems, where, field string, pr *probe, wantPath string, c container, httpPort int) {
	if pr == nil || pr.HTTPGet == nil {
		p.addf(where, "%s: want an httpGet probe on %s", field, wantPath)
		return
	}
	if pr.HTTPGet.Path != wantPath {
		p.addf(where, "%s path is %q, want %q", field, pr.HTTPGet.Path, wantPath)
	}
	if port, ok := c.resolvePort(pr.HTTPGet.Port); !ok || port != httpPort {
		p.addf(where, "%s port %q is not the http container port", field, pr.HTTPGet.Port.Value)
	}
}

// quantityPattern is a Kubernetes resource quantity without exponent forms.
var quantityPattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$`)

// parseQuantity parses a Kubernetes quantity such as 256Mi or 0.5Gi into bytes.
func parseQuantity(s string) (*big.Rat, error) {
	m := quantityPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil, fmt.Errorf("unsupported quantity %q", s)
	}
	v, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return nil, fmt.Errorf("bad number in quantity %q", s)
	}
	mult := map[string]*big.Rat{
		"": big.NewRat(1, 1), "m": big.NewRat(1, 1000),
		"k": big.NewRat(1e3, 1), "M": big.NewRat(1e6, 1), "G": big.NewRat(1e9, 1),
		"T": big.NewRat(1e12, 1), "P": big.NewRat(1e15, 1), "E": big.NewRat(1e18, 1),
		"Ki": big.NewRat(1<<10, 1), "Mi": big.NewRat(1<<20, 1), "Gi": big.NewRat(1<<30, 1),
		"Ti": big.NewRat(1<<40, 1), "Pi": big.NewRat(1<<50, 1), "Ei": big.NewRat(1<<60, 1),
	}[m[2]]
	return v.Mul(v, mult), nil
}

// checkReferences makes sure every ConfigMap, Secret and key the pod names exists.
func checkReferences(p *problems, d deployment, configMaps, secrets map[string]map[string]string) {
	where := d.String()
	refKey := func(kind string, set map[string]map[string]string, r *keyRef) {
		data, ok := set[r.Name]
		if !ok {
			p.addf(where, "refers to %s %q, which is not defined", kind, r.Name)
			return
		}
		if r.Key == "" {
			return
		}
		if _, ok := data[r.Key]; !ok {
			p.addf(where, "%s %s has no key %q", kind, r.Name, r.Key)
		}
	}
	for _, c := range append(slices.Clone(d.Spec.Template.Spec.Containers), d.Spec.Template.Spec.InitContainers...) {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				refKey("ConfigMap", configMaps, &keyRef{Name: ef.ConfigMapRef.Name})
			}
			if ef.SecretRef != nil {
				refKey("Secret", secrets, &keyRef{Name: ef.SecretRef.Name})
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				refKey("Secret", secrets, r)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				refKey("ConfigMap", configMaps, r)
			}
		}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			refKey("Secret", secrets, &keyRef{Name: v.Secret.SecretName})
		}
		if v.ConfigMap != nil {
			refKey("ConfigMap", configMaps, &keyRef{Name: v.ConfigMap.Name})
		}
	}
}

// environment is what c's process sees: the literal values (from
// ConfigMaps and env values) and the variables taken from Secrets.
func (c container) environment(configMaps map[string]map[string]string) (literal map[string]string, fromSecret map[string]bool) {
	literal = map[string]string{}
	fromSecret = map[string]bool{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			maps.Copy(literal, configMaps[ef.ConfigMapRef.Name])
		}
	}
	for _, e := range c.Env {
		switch {
		case e.Value != nil:
			literal[e.Name] = *e.Value
			delete(fromSecret, e.Name)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			fromSecret[e.Name] = true
			delete(literal, e.Name)
		case e.ValueFrom != nil:
			literal[e.Name] = ""
		}
	}
	return literal, fromSecret
}

// checkServiceEnv checks the environment a service's container ends up with:
// the required variables, secrets from Secrets, production, and listen
// addresses that are reachable and agree with the container ports.
func checkServiceEnv(p *problems, d deployment, s serviceSpec, configMaps map[string]map[string]string) {
	where := d.String()
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return
	}
	c := d.Spec.Template.Spec.Containers[0]
	literal, fromSecret := c.environment(configMaps)
	checkProduction(p, where, s, true, func(name string) (string, bool) {
		v, ok := literal[name]
		return v, ok || fromSecret[name]
	})
	for _, name := range requiredServiceEnv {
		if _, ok := literal[name]; !ok && !fromSecret[name] {
			p.addf(where, "environment variable %s is not set", name)
		}
	}
	for _, name := range secretServiceEnv {
		if !fromSecret[name] {
			p.addf(where, "%s must come from a Secret (valueFrom.secretKeyRef)", name)
		}
	}
	checkKeys(p, where, s, func(name string) bool {
		_, lit := literal[name]
		return lit || fromSecret[name]
	}, func(name string) bool { return fromSecret[name] })
	if u, ok := literal["NATS_URL"]; ok && !strings.HasPrefix(u, "tls://") {
		p.addf(where, "NATS_URL %q is not tls://: NKey logins and events would cross the network in clear", u)
	}
	if key, want := c.secretKey("AID_NATS_NKEY_SEED"), s.envPrefix()+"NATS_NKEY_SEED"; !strings.HasSuffix(key, "/"+want) {
		p.addf(where, "AID_NATS_NKEY_SEED comes from %q: want the service's own NATS identity's Secret key %s", key, want)
	}
	for _, l := range []struct {
		port string
		want int
	}{{"grpc", s.grpc}, {"http", s.http}} {
		name := s.envPrefix() + strings.ToUpper(l.port) + "_ADDR"
		containerPort, _ := c.port(l.port)
		checkListenAddr(p, where, name, literal[name], containerPort)
	}
}

// checkListenAddr requires addr to listen on every interface at port.
func checkListenAddr(p *problems, where, name, addr string, port int) {
	if addr == "" {
		p.addf(where, "%s is not set: the service would listen on loopback only", name)
		return
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		p.addf(where, "%s=%q: %v", name, addr, err)
		return
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		p.addf(where, "%s=%q listens on loopback only", name, addr)
	}
	if portText != strconv.Itoa(port) {
		p.addf(where, "%s=%q does not match container port %d", name, addr, port)
	}
}

// checkServiceFor requires a Service that selects exactly d's pods and
// exposes its ports (grpc and http for a service).
func checkServiceFor(p *problems, d deployment, all []deployment, services map[string]serviceObjectSpec, ports []string) {
	where := d.String()
	c := d.Spec.Template.Spec.Containers
	var found bool
	for name, s := range services {
		if s.Spec.Type == "ExternalName" || !selectorMatches(s.Spec.Selector, d.podLabels()) {
			continue
		}
		for _, other := range all {
			if other.Metadata.Name != d.Metadata.Name && selectorMatches(s.Spec.Selector, other.podLabels()) {
				p.addf(where, "Service %s also selects the pods of Deployment %s", name, other.Metadata.Name)
			}
		}
		found = true
		for _, want := range ports {
			i := slices.IndexFunc(s.Spec.Ports, func(sp servicePort) bool { return sp.Name == want })
			if i < 0 {
				p.addf(where, "Service %s has no port named %s", name, want)
				continue
			}
			if len(c) == 0 {
				continue
			}
			containerPort, _ := c[0].port(want)
			sp := s.Spec.Ports[i]
			target := sp.Port
			if sp.TargetPort.Kind != 0 {
				var ok bool
				if target, ok = c[0].resolvePort(sp.TargetPort); !ok {
					p.addf(where, "Service %s port %s targets %q, which the container does not expose", name, want, sp.TargetPort.Value)
					continue
				}
			}
			if target != containerPort {
				p.addf(where, "Service %s port %s targets %d, the container's %s port is %d", name, want, target, want, containerPort)
			}
		}
	}
	if !found {
		p.addf(where, "no Service selects the pod labels %v", d.podLabels())
	}
}

// checkPDBFor requires a PodDisruptionBudget that covers exactly d's pods and
// still lets a node drain.
func checkPDBFor(p *problems, d deployment, all []deployment, pdbs []pdbSpec) {
	where := d.String()
	var found bool
	for _, b := range pdbs {
		if !b.Spec.Selector.selects(d.podLabels()) {
			continue
		}
		found = true
		for _, other := range all {
			if other.Metadata.Name != d.Metadata.Name && b.Spec.Selector.selects(other.podLabels()) {
				p.addf(where, "its PodDisruptionBudget also covers Deployment %s", other.Metadata.Name)
			}
		}
		if b.Spec.MinAvailable.Kind == 0 && b.Spec.MaxUnavailable.Kind == 0 {
			p.addf(where, "PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
		}
		if m := b.Spec.MinAvailable; m.Kind == yaml.ScalarNode && d.Spec.Replicas != nil {
			if n, err := strconv.Atoi(m.Value); err == nil && n >= *d.Spec.Replicas {
				p.addf(where, "PodDisruptionBudget minAvailable %d blocks every eviction of %d replicas", n, *d.Spec.Replicas)
			}
		}
	}
	if !found {
		p.addf(where, "no PodDisruptionBudget selects the pod labels %v", d.podLabels())
	}
}

// ---------------------------------------------------------------------------
// Kustomization.

type kustomizationFile struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
}

func decodeKustomization(docs []document) (*kustomizationFile, error) {
	if len(docs) != 1 {
		return nil, fmt.Errorf("kustomization: want one document, found %d", len(docs))
	}
	var k kustomizationFile
	if err := docs[0].node.Decode(&k); err != nil {
		return nil, fmt.Errorf("%s: %w", docs[0].source, err)
	}
	return &k, nil
}

// validateKustomization requires the kustomization to list exactly the
// manifest files (names relative to its folder).
func validateKustomization(k *kustomizationFile, manifests []string) []error {
	var p problems
	const where = "k8s/kustomization.yaml"
	if k.Kind != "Kustomization" || !strings.HasPrefix(k.APIVersion, "kustomize.config.k8s.io/") {
		p.addf(where, "not a Kustomization (apiVersion %q, kind %q)", k.APIVersion, k.Kind)
	}
	if k.Namespace != "" && k.Namespace != namespace {
		p.addf(where, "namespace is %q, want %q", k.Namespace, namespace)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		clean := path.Clean(r)
		if listed[clean] {
			p.addf(where, "resource %s is listed twice", r)
		}
		listed[clean] = true
		if !slices.Contains(manifests, clean) {
			p.addf(where, "resource %s does not exist", r)
		}
	}
	for _, m := range manifests {
		if !listed[m] {
			p.addf(where, "manifest %s is not listed in resources", m)
		}
	}
	return p.errs
}

// ---------------------------------------------------------------------------
// Compose.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File        string `yaml:"file"`
		Environment string `yaml:"environment"`
	} `yaml:"secrets"`
	Volumes map[string]yaml.Node `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Environment yaml.Node `yaml:"environment"`
	DependsOn   yaml.Node `yaml:"depends_on"`
	Healthcheck *struct {
		Test    yaml.Node `yaml:"test"`
		Disable bool      `yaml:"disable"`
	} `yaml:"healthcheck"`
	Ports   []string    `yaml:"ports"`
	Secrets []yaml.Node `yaml:"secrets"`
	Volumes []yaml.Node `yaml:"volumes"`
	Command []string    `yaml:"command"`
	Restart string      `yaml:"restart"`
}

// sameProgram reports whether a and b run the same image: the same image
// name, or builds of the same SERVICE.
func sameProgram(a, b composeService) bool {
	if a.Image != "" || b.Image != "" {
		return a.Image == b.Image
	}
	return a.Build != nil && b.Build != nil && a.Build.Args["SERVICE"] == b.Build.Args["SERVICE"]
}

// isMigrate reports whether the service is a one-shot `<service> migrate`
// step, which exits when done and so has no healthcheck.
func (s composeService) isMigrate() bool {
	return slices.Equal(s.Command, []string{"migrate"}) && s.Restart == "no"
}

// isNATSSetup reports whether the service is the one-shot `aidctl
// nats-setup` step, which exits when done and so has no healthcheck.
func (s composeService) isNATSSetup() bool {
	return slices.Equal(s.Command, []string{"nats-setup"}) && s.Restart == "no"
}

// secretNames are the secrets the service mounts.
func (s composeService) secretNames() []string {
	var out []string
	for _, sec := range s.Secrets {
		if sec.Kind == yaml.ScalarNode {
			out = append(out, sec.Value)
			continue
		}
		var long struct {
			Source string `yaml:"source"`
		}
		if sec.Decode(&long) == nil {
			out = append(out, long.Source)
		}
	}
	return out
}

// natsSeedSecret is the secret that holds a service's own NATS NKey seed.
func natsSeedSecret(service string) string {
	return "nats_seed_" + strings.ReplaceAll(service, "-", "_")
}

// checkComposeNATSLogin requires the service to reach NATS over TLS and to
// log in with its own NKey seed, from a secret of its own.
func checkComposeNATSLogin(p *problems, c *composeFile, s serviceSpec) {
	where := "compose.yaml service " + s.name
	svc := c.Services[s.name]
	env, _ := svc.environment()
	if !strings.HasPrefix(env["NATS_URL"], "tls://") {
		p.addf(where, "NATS_URL %q is not tls://: NKey logins and events would cross the network in clear", env["NATS_URL"])
	}
	if _, ok := env["AID_NATS_NKEY_SEED"]; ok {
		p.addf(where, "AID_NATS_NKEY_SEED is a literal: mount the seed as a secret and name it in AID_NATS_NKEY_SEED_FILE")
	}
	secret := natsSeedSecret(s.name)
	if got, want := env["AID_NATS_NKEY_SEED_FILE"], "/run/secrets/"+secret; got != want {
		p.addf(where, "AID_NATS_NKEY_SEED_FILE is %q, want %s: each service logs in to NATS with its own NKey", got, want)
	}
	if !slices.Contains(svc.secretNames(), secret) {
		p.addf(where, "does not mount the secret %s (its NATS NKey seed)", secret)
	}
	for _, other := range svc.secretNames() {
		if strings.HasPrefix(other, "nats_seed_") && other != secret {
			p.addf(where, "mounts %s, another identity's NATS seed", other)
		}
	}
}

func decodeCompose(docs []document) (*composeFile, error) {
	if len(docs) != 1 {
		return nil, fmt.Errorf("compose: want one document, found %d", len(docs))
	}
	var c composeFile
	if err := docs[0].node.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", docs[0].source, err)
	}
	return &c, nil
}

// environment returns the service's variables (map or KEY=VALUE list form).
func (s composeService) environment() (map[string]string, error) {
	env := map[string]string{}
	switch s.Environment.Kind {
	case 0:
	case yaml.MappingNode:
		if err := s.Environment.Decode(&env); err != nil {
			return nil, err
		}
	case yaml.SequenceNode:
		var list []string
		if err := s.Environment.Decode(&list); err != nil {
			return nil, err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	default:
		return nil, errors.New("environment is neither a map nor a list")
	}
	return env, nil
}

// dependsOn returns the services depended on and the condition for each.
func (s composeService) dependsOn() (map[string]string, error) {
	deps := map[string]string{}
	switch s.DependsOn.Kind {
	case 0:
	case yaml.SequenceNode:
		var list []string
		if err := s.DependsOn.Decode(&list); err != nil {
			return nil, err
		}
		for _, name := range list {
			deps[name] = "service_started"
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := s.DependsOn.Decode(&m); err != nil {
			return nil, err
		}
		for name, d := range m {
			deps[name] = d.Condition
		}
	default:
		return nil, errors.New("depends_on is neither a list nor a map")
	}
	return deps, nil
}

// healthcheckTest returns the healthcheck command as one string.
func (s composeService) healthcheckTest() string {
	if s.Healthcheck == nil || s.Healthcheck.Disable {
		return ""
	}
	t := s.Healthcheck.Test
	switch t.Kind {
	case yaml.ScalarNode:
		return t.Value
	case yaml.SequenceNode:
		var parts []string
		for _, n := range t.Content {
			parts = append(parts, n.Value)
		}
		if len(parts) > 0 && parts[0] == "NONE" {
			return ""
		}
		return strings.Join(parts, " ")
	default:
		return ""
	}
}

// interpolation matches ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves Compose variables to their defaults, or to a
// placeholder for required ones, as if the environment set nothing.
func interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		switch {
		case strings.HasSuffix(sub[2], "-"):
			return sub[3]
		case strings.HasSuffix(sub[2], "?"):
			return "required"
		}
		return ""
	})
}

// validateCompose checks the Compose stack: healthchecks everywhere,
// dependencies that exist (and are healthy when asked to be), the
// infrastructure images, and each of want configured to be reachable,
// traced and ready-checked.
func validateCompose(c *composeFile, want []serviceSpec, web []webSpec) []error {
	var p problems
	if len(c.Services) == 0 {
		p.addf("compose.yaml", "no services")
	}
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	deps := map[string]map[string]string{}
	for _, name := range names {
		s := c.Services[name]
		where := "compose.yaml service " + name
		if s.Image == "" && s.Build == nil {
			p.addf(where, "neither image nor build")
		}
		if s.healthcheckTest() == "" && !s.isMigrate() && !s.isNATSSetup() {
			p.addf(where, "no healthcheck")
		}
		d, err := s.dependsOn()
		if err != nil {
			p.addf(where, "depends_on: %v", err)
		}
		deps[name] = d
		for dep, cond := range d {
			target, ok := c.Services[dep]
			switch {
			case !ok:
				p.addf(where, "depends_on names unknown service %q", dep)
			case dep == name:
				p.addf(where, "depends on itself")
			case cond == "service_healthy" && target.healthcheckTest() == "":
				p.addf(where, "waits for %s to be healthy, but %s has no healthcheck", dep, dep)
			}
			if !slices.Contains([]string{"service_started", "service_healthy", "service_completed_successfully"}, cond) {
				p.addf(where, "depends_on %s has unknown condition %q", dep, cond)
			}
		}
		env, err := s.environment()
		if err != nil {
			p.addf(where, "environment: %v", err)
		}
		// A URL naming another service of the stack needs that service up first.
		for k, v := range env {
			u, err := url.Parse(interpolate(v))
			if err != nil || u.Host == "" {
				continue
			}
			if _, isService := c.Services[u.Hostname()]; isService && u.Hostname() != name {
				if _, ok := d[u.Hostname()]; !ok {
					p.addf(where, "%s points at %s, which is not in depends_on", k, u.Hostname())
				}
			}
		}
		for _, sec := range s.Secrets {
			ref := sec.Value
			if sec.Kind == yaml.MappingNode {
				var long struct {
					Source string `yaml:"source"`
				}
				_ = sec.Decode(&long)
				ref = long.Source
			}
			if _, ok := c.Secrets[ref]; !ok {
				p.addf(where, "uses secret %q, which is not defined at the top level", ref)
			}
		}
		for _, v := range s.Volumes {
			if v.Kind != yaml.ScalarNode {
				continue
			}
			src, _, _ := strings.Cut(v.Value, ":")
			if src != "" && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, "$") {
				if _, ok := c.Volumes[src]; !ok {
					p.addf(where, "uses volume %q, which is not defined at the top level", src)
				}
			}
		}
	}
	checkComposeCycles(&p, names, deps)
	checkComposeInfra(&p, c)

	for _, s := range want {
		svc, ok := c.Services[s.name]
		where := "compose.yaml service " + s.name
		if !ok {
			p.addf("compose.yaml", "no service %s", s.name)
			continue
		}
		if svc.Build != nil && svc.Build.Args["SERVICE"] != s.name {
			p.addf(where, "build arg SERVICE is %q, want %q", svc.Build.Args["SERVICE"], s.name)
		}
		env, _ := svc.environment()
		for _, name := range requiredServiceEnv {
			if _, ok := env[name]; !ok {
				p.addf(where, "environment variable %s is not set", name)
			}
		}
		checkKeys(&p, where, s, func(name string) bool { _, ok := env[name]; return ok }, nil)
		checkProduction(&p, where, s, true, func(name string) (string, bool) { v, ok := env[name]; return interpolate(v), ok })
		if got := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "http://jaeger:4317" {
			p.addf(where, "OTEL_EXPORTER_OTLP_ENDPOINT is %q, want http://jaeger:4317", got)
		}
		checkListenAddr(&p, where, s.envPrefix()+"GRPC_ADDR", env[s.envPrefix()+"GRPC_ADDR"], s.grpc)
		checkListenAddr(&p, where, s.envPrefix()+"HTTP_ADDR", env[s.envPrefix()+"HTTP_ADDR"], s.http)
		if test := svc.healthcheckTest(); !strings.Contains(test, fmt.Sprintf(":%d/readyz", s.http)) {
			p.addf(where, "healthcheck %q does not probe /readyz on port %d", test, s.http)
		}
		for _, infra := range []string{"postgres", "nats"} {
			if deps[s.name][infra] != "service_healthy" {
				p.addf(where, "must depend on %s with condition service_healthy", infra)
			}
		}
		checkComposeDatabaseLogins(&p, c, s, deps[s.name])
		checkComposeNATSLogin(&p, c, s)
		for _, w := range web {
			checkComposeTrustsWebKey(&p, c, s.name, w)
		}
	}
	for _, w := range web {
		checkComposeWeb(&p, c, w, deps)
	}
	return p.errs
}

// checkComposeDatabaseLogins requires the service to log in as its own role
// (aid_<schema>) and to wait for a `migrate` step of its own image that logs
// in as the schemas' owner, whose login the service does not hold.
func checkComposeDatabaseLogins(p *problems, c *composeFile, s serviceSpec, deps map[string]string) {
	where := "compose.yaml service " + s.name
	env, _ := c.Services[s.name].environment()
	if user, want := config.DatabaseUser(interpolate(env["DATABASE_URL"])), config.DefaultDBRole(s.name); user != want {
		p.addf(where, "DATABASE_URL logs in as %q: want the service's own role %s", user, want)
	}
	if _, ok := env["AID_MIGRATE_DATABASE_URL"]; ok {
		p.addf(where, "holds the owner's login AID_MIGRATE_DATABASE_URL: only its migrate step may")
	}
	var steps []string
	for dep, cond := range deps {
		m := c.Services[dep]
		if !m.isMigrate() || !sameProgram(m, c.Services[s.name]) {
			continue
		}
		steps = append(steps, dep)
		mw := "compose.yaml service " + dep
		if cond != "service_completed_successfully" {
			p.addf(where, "waits for %s with %q: want service_completed_successfully", dep, cond)
		}
		menv, _ := m.environment()
		if user := config.DatabaseUser(interpolate(menv["AID_MIGRATE_DATABASE_URL"])); user != config.DefaultDBOwnerRole {
			p.addf(mw, "AID_MIGRATE_DATABASE_URL logs in as %q: want the schemas' owner %s", user, config.DefaultDBOwnerRole)
		}
		checkProduction(p, mw, s, false, func(name string) (string, bool) { v, ok := menv[name]; return interpolate(v), ok })
	}
	if len(steps) == 0 {
		p.addf(where, "depends on no `migrate` step of its image (command: [migrate], restart: \"no\")")
	}
}

// checkComposeInfra pins the infrastructure images and wiring.
func checkComposeInfra(p *problems, c *composeFile) {
	for _, want := range []struct{ service, imagePrefix string }{
		{"postgres", "postgres:15"},
		{"nats", "nats:2.12"},
		{"jaeger", "jaegertracing/jaeger:2.13.0"},
	} {
		s, ok := c.Services[want.service]
		if !ok {
			p.addf("compose.yaml", "no service %s", want.service)
			continue
		}
		if !strings.HasPrefix(s.Image, want.imagePrefix) {
			p.addf("compose.yaml service "+want.service, "image %q, want %s", s.Image, want.imagePrefix)
		}
	}
	if nats, ok := c.Services["nats"]; ok {
		if !slices.ContainsFunc(nats.Volumes, func(v yaml.Node) bool { return strings.Contains(v.Value, "nats/nats.conf:") }) {
			p.addf("compose.yaml service nats", "does not mount nats/nats.conf")
		}
	}
	if jaeger, ok := c.Services["jaeger"]; ok {
		for _, port := range []string{"4317", "4318", "16686"} {
			if !slices.ContainsFunc(jaeger.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
				p.addf("compose.yaml service jaeger", "does not publish port %s", port)
			}
		}
	}
}

func checkComposeCycles(p *problems, names []string, deps map[string]map[string]string) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(n string, trail []string)
	visit = func(n string, trail []string) {
		switch state[n] {
		case visiting:
			p.addf("compose.yaml", "depends_on cycle: %s", strings.Join(append(trail, n), " -> "))
			return
		case done:
			return
		}
		state[n] = visiting
		next := make([]string, 0, len(deps[n]))
		for d := range deps[n] {
			next = append(next, d)
		}
		sort.Strings(next)
		for _, d := range next {
			visit(d, append(trail, n))
		}
		state[n] = done
	}
	for _, n := range names {
		visit(n, nil)
	}
}

// validateComposeBuilds requires every build's context to be the repository
// root and its Dockerfile to exist; composeDir is the folder holding the
// Compose file, which build paths are relative to.
func validateComposeBuilds(c *composeFile, composeDir string) []error {
	var p problems
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		ctx := filepath.Join(composeDir, s.Build.Context)
		dockerfile := s.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
			p.addf("compose.yaml service "+name, "build context %s has no go.mod: want the repository root", s.Build.Context)
		}
		if _, err := os.Stat(filepath.Join(ctx, dockerfile)); err != nil {
			p.addf("compose.yaml service "+name, "dockerfile %s: %v", dockerfile, err)
		}
	}
	return p.errs
}

// ---------------------------------------------------------------------------
// NATS and Dockerfile.

// natsTLSDir is where nats.conf expects the server's certificate, key and CA.
const natsTLSDir = "/etc/nats/tls/"

// validateNATSConfig parses the file with the NATS server's own parser (which
// rejects unknown fields) and requires JetStream with sync_interval always,
// TLS, and authorization by NKey users whose permissions are natsx.Identities
// exactly. The parse runs on a copy whose nkeys.conf holds fresh keys and
// whose TLS files are a throwaway certificate, since the committed files are
// templates.
func validateNATSConfig(file string) []error {
	var p problems
	text, err := os.ReadFile(file)
	if err != nil {
		p.addf(file, "%v", err)
		return p.errs
	}
	if got, want := natsdev.ConfBlock(string(text)), natsdev.ConfBegin+natsdev.AuthorizationConf()+natsdev.ConfEnd; got != want {
		p.addf(file, "the authorization block is not natsx.Identities: run `make nats-conf`")
	}
	scratch, err := os.MkdirTemp("", "natsconf")
	if err != nil {
		p.addf(file, "%v", err)
		return p.errs
	}
	defer os.RemoveAll(scratch)
	keys, err := natsdev.NewKeys()
	if err == nil {
		err = writeNATSScratch(scratch, string(text), keys)
	}
	if err != nil {
		p.addf(file, "%v", err)
		return p.errs
	}
	opts, err := server.ProcessConfigFile(filepath.Join(scratch, "nats.conf"))
	if err != nil {
		p.addf(file, "%v", err)
		return p.errs
	}
	if !opts.JetStream {
		p.addf(file, "JetStream is not enabled")
	}
	if !opts.SyncAlways {
		p.addf(file, "jetstream sync_interval is not always: acknowledged events could be lost in a crash")
	}
	if opts.StoreDir == "" {
		p.addf(file, "jetstream store_dir is not set")
	}
	if opts.HTTPPort <= 0 {
		p.addf(file, "http_port is not set: the /healthz healthcheck needs the monitoring port")
	}
	if opts.TLSConfig == nil {
		p.addf(file, "no tls block: NKey logins and events would cross the network in clear")
	}
	if len(opts.Users) > 0 || opts.NoAuthUser != "" || opts.Authorization != "" || opts.Username != "" {
		p.addf(file, "authorization has users, a token or a no_auth_user besides the NKey users: every client must log in with its identity's NKey")
	}
	validateNATSUsers(&p, file, opts.Nkeys, keys)
	return p.errs
}

// validateNATSUsers requires one NKey user per identity of natsx.Identities,
// with that identity's key and exactly its permissions, and no other user.
func validateNATSUsers(p *problems, file string, users []*server.NkeyUser, keys natsdev.Keys) {
	if len(users) == 0 {
		p.addf(file, "no authorization: any client could publish any service's events")
		return
	}
	byKey := map[string]*server.NkeyUser{}
	for _, u := range users {
		byKey[u.Nkey] = u
	}
	for _, id := range natsx.Identities() {
		kp, err := nkeys.FromSeed([]byte(keys.Seed(id.Name)))
		if err != nil {
			p.addf(file, "%s: %v", id.Name, err)
			continue
		}
		pub, _ := kp.PublicKey()
		u, ok := byKey[pub]
		if !ok {
			p.addf(file, "no NKey user for identity %s ($%s)", id.Name, natsdev.NKeyVariable(id.Name))
			continue
		}
		delete(byKey, pub)
		want := natsdev.ServerPermissions(id.Permissions)
		if u.Permissions == nil || !sameAllow(u.Permissions.Publish, want.Publish) || !sameAllow(u.Permissions.Subscribe, want.Subscribe) {
			p.addf(file, "identity %s has permissions %s, want natsx.Identities' %s", id.Name, describePermissions(u.Permissions), describePermissions(want))
		}
	}
	for _, u := range byKey {
		p.addf(file, "NKey user %s is no identity of natsx.Identities", u.Nkey)
	}
}

func sameAllow(got, want *server.SubjectPermission) bool {
	if got == nil || want == nil {
		return got == want
	}
	return len(got.Deny) == 0 && slices.Equal(got.Allow, want.Allow)
}

func describePermissions(p *server.Permissions) string {
	if p == nil {
		return "none (everything allowed)"
	}
	var pub, sub []string
	if p.Publish != nil {
		pub = p.Publish.Allow
	}
	if p.Subscribe != nil {
		sub = p.Subscribe.Allow
	}
	return fmt.Sprintf("publish %q subscribe %q", pub, sub)
}

// writeNATSScratch writes conf into dir as nats.conf with the TLS files
// moved to dir/tls (a fresh self-signed certificate), and nkeys.conf with
// the public keys of keys.
func writeNATSScratch(dir, conf string, keys natsdev.Keys) error {
	nk, err := natsdev.NKeysConf(keys)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "nkeys.conf"), []byte(nk), 0o600); err != nil {
		return err
	}
	tlsDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := selfSignedCert()
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"server.crt": certPEM, "ca.crt": certPEM, "server.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), b, 0o600); err != nil {
			return err
		}
	}
	conf = strings.ReplaceAll(conf, natsTLSDir, tlsDir+"/")
	return os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(conf), 0o600)
}

// selfSignedCert makes a throwaway ECDSA certificate for the server "nats".
func selfSignedCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"}, DNSNames: []string{"nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// validateDockerfile checks the multi-stage recipe: a Go builder stage, a
// distroless static nonroot runtime, the SERVICE build arg and a non-root user.
func validateDockerfile(text string) []error {
	var p problems
	const where = "docker/Dockerfile"
	var froms []string
	var user string
	var hasServiceArg, buildsService bool
	for line := range strings.SplitSeq(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			if len(fields) > 1 {
				froms = append(froms, fields[1])
			}
		case "ARG":
			if len(fields) > 1 && (fields[1] == "SERVICE" || strings.HasPrefix(fields[1], "SERVICE=")) {
				hasServiceArg = true
			}
		case "USER":
			if len(fields) > 1 {
				user = fields[1]
			}
		}
		if strings.Contains(line, "./services/${SERVICE}/cmd/${SERVICE}") {
			buildsService = true
		}
	}
	if len(froms) < 2 {
		p.addf(where, "want a multi-stage build, found %d FROM", len(froms))
		return p.errs
	}
	if !strings.HasPrefix(froms[0], "golang:") {
		p.addf(where, "first stage is %q, want a golang builder", froms[0])
	}
	if last := froms[len(froms)-1]; !strings.HasPrefix(last, "gcr.io/distroless/static") || !strings.HasSuffix(last, ":nonroot") {
		p.addf(where, "runtime stage is %q, want gcr.io/distroless/static...:nonroot", last)
	}
	if !hasServiceArg || !buildsService {
		p.addf(where, "does not build ./services/${SERVICE}/cmd/${SERVICE} from ARG SERVICE")
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		p.addf(where, "final USER is %q, want nonroot", user)
	}
	return p.errs
}
