package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/edubureau/studentaid/pkg/natsx"
)

// builtinKinds are the built-in Kubernetes kinds a manifest may use, each
// with its typed struct: every object is decoded into it with unknown fields
// refused, so a misspelt or misplaced field (which the API server would drop
// or refuse) fails here. A kind not listed is refused: add it.
var builtinKinds = map[string]func() any{
	"v1/Namespace":                             func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":                             func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                                func() any { return new(corev1.Secret) },
	"v1/Service":                               func() any { return new(corev1.Service) },
	"v1/ServiceAccount":                        func() any { return new(corev1.ServiceAccount) },
	"v1/ResourceQuota":                         func() any { return new(corev1.ResourceQuota) },
	"v1/LimitRange":                            func() any { return new(corev1.LimitRange) },
	"apps/v1/Deployment":                       func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                      func() any { return new(appsv1.StatefulSet) },
	"batch/v1/Job":                             func() any { return new(batchv1.Job) },
	"batch/v1/CronJob":                         func() any { return new(batchv1.CronJob) },
	"policy/v1/PodDisruptionBudget":            func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":             func() any { return new(networkingv1.Ingress) },
	"networking.k8s.io/v1/IngressClass":        func() any { return new(networkingv1.IngressClass) },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return new(rbacv1.Role) },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return new(rbacv1.RoleBinding) },
}

// typedKey is the builtinKinds key of o.
func (o object) typedKey() string { return o.APIVersion + "/" + o.Kind }

// decodeTyped decodes o into its built-in type with unknown fields refused
// (the way `kubectl apply --validate=strict` would), returning the typed
// object. The YAML goes to JSON first (sigs.k8s.io/yaml, as kubectl does), so
// the types' JSON decoding (quantities, int-or-string) applies.
func decodeTyped(o object) (any, error) {
	newObj, ok := builtinKinds[o.typedKey()]
	if !ok {
		return nil, fmt.Errorf("%s %s is not a built-in kind the validator knows: add its type to builtinKinds (or a checked struct for a custom resource)", o.APIVersion, o.Kind)
	}
	y, err := yaml.Marshal(o.node)
	if err != nil {
		return nil, err
	}
	j, err := sigsyaml.YAMLToJSON(y)
	if err != nil {
		return nil, err
	}
	into := newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return nil, fmt.Errorf("strict decoding into %s %s: %w", o.APIVersion, o.Kind, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("strict decoding into %s %s: trailing data", o.APIVersion, o.Kind)
	}
	return into, nil
}

// ---------------------------------------------------------------------------
// Autoscaling.

// consumerLagMetric is the gauge every service exports for its durable
// consumer (pkg/natsx.NewConsumerMetrics), labelled consumer=<service>; the
// HorizontalPodAutoscalers scale on it through prometheus-adapter.
const consumerLagMetric = "aid_consumer_lag"

// minAutoscaledReplicas is the fewest replicas an autoscaler may leave: two,
// so a node's loss or a drain never takes a service down.
const minAutoscaledReplicas = 2

// exportedMetricNames lists the metric names pkg/natsx's consumer metrics
// register, so the autoscalers' metric is checked against the code.
func exportedMetricNames() []string {
	var r captureRegisterer
	natsx.NewConsumerMetrics(&r)
	return r.names
}

type captureRegisterer struct{ names []string }

func (r *captureRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		// Desc has no accessor; its String is `Desc{fqName: "<name>", ...}`.
		s := d.String()
		if _, rest, ok := strings.Cut(s, `fqName: "`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			r.names = append(r.names, name)
		}
	}
	return nil
}

func (r *captureRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *captureRegisterer) Unregister(prometheus.Collector) bool { return true }

// checkHPAFor requires exactly one autoscaling/v2 HorizontalPodAutoscaler
// for d: at least minAutoscaledReplicas, room to grow, and metrics on CPU
// utilisation and on the service's consumer lag (External or Pods metric
// consumerLagMetric, for External selecting consumer=<service>); the lag
// only when consumes (a web front end has no consumer).
func checkHPAFor(p *problems, d deployment, hpas []*autoscalingv2.HorizontalPodAutoscaler, consumes bool) {
	where := d.String()
	var mine []*autoscalingv2.HorizontalPodAutoscaler
	for _, h := range hpas {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Metadata.Name {
			mine = append(mine, h)
		}
	}
	if len(mine) != 1 {
		p.addf(where, "want exactly one HorizontalPodAutoscaler scaling it (scaleTargetRef Deployment %s), found %d", d.Metadata.Name, len(mine))
		return
	}
	h := mine[0]
	hw := fmt.Sprintf("%s HorizontalPodAutoscaler %s", where, h.Name)
	if h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
		p.addf(hw, "scaleTargetRef.apiVersion is %q, want apps/v1", h.Spec.ScaleTargetRef.APIVersion)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < minAutoscaledReplicas {
		p.addf(hw, "minReplicas must be at least %d (unset means 1)", minAutoscaledReplicas)
	} else if h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
		p.addf(hw, "maxReplicas %d leaves no room above minReplicas %d", h.Spec.MaxReplicas, *h.Spec.MinReplicas)
	}
	if r := d.Spec.Replicas; r != nil && h.Spec.MinReplicas != nil && *r < int(*h.Spec.MinReplicas) {
		p.addf(hw, "the Deployment's replicas %d is below minReplicas %d", *r, *h.Spec.MinReplicas)
	}
	var cpu, lag bool
	for _, m := range h.Spec.Metrics {
		switch {
		case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU:
			cpu = m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil && *m.Resource.Target.AverageUtilization > 0
		case m.Type == autoscalingv2.ExternalMetricSourceType && m.External != nil && m.External.Metric.Name == consumerLagMetric:
			sel := m.External.Metric.Selector
			if sel == nil || sel.MatchLabels["consumer"] != d.Metadata.Name {
				p.addf(hw, "the External metric %s must select consumer=%s (its durable consumer)", consumerLagMetric, d.Metadata.Name)
			}
			lag = m.External.Target.Type == autoscalingv2.AverageValueMetricType && m.External.Target.AverageValue != nil && m.External.Target.AverageValue.Sign() > 0
		case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil && m.Pods.Metric.Name == consumerLagMetric:
			lag = m.Pods.Target.AverageValue != nil && m.Pods.Target.AverageValue.Sign() > 0
		}
	}
	if !cpu {
		p.addf(hw, "no Resource metric on cpu with a Utilization target")
	}
	if !lag && consumes {
		p.addf(hw, "no External (AverageValue) or Pods metric %s with a positive target: the consumer lag", consumerLagMetric)
	}
}

// checkAdapterRules requires, when an autoscaler uses the consumer lag as an
// External metric, a ConfigMap with a prometheus-adapter externalRule that
// serves it under that name.
func checkAdapterRules(p *problems, hpas []*autoscalingv2.HorizontalPodAutoscaler, configMaps map[string]map[string]string) {
	external := slices.ContainsFunc(hpas, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
		return slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.External != nil && m.External.Metric.Name == consumerLagMetric
		})
	})
	if !external {
		return
	}
	type rule struct {
		SeriesQuery string `yaml:"seriesQuery"`
		Name        struct {
			As string `yaml:"as"`
		} `yaml:"name"`
		MetricsQuery string `yaml:"metricsQuery"`
	}
	for _, data := range configMaps {
		var cfg struct {
			ExternalRules []rule `yaml:"externalRules"`
		}
		if yaml.Unmarshal([]byte(data["config.yaml"]), &cfg) != nil {
			continue
		}
		for _, r := range cfg.ExternalRules {
			if r.Name.As == consumerLagMetric && strings.Contains(r.SeriesQuery, consumerLagMetric) && r.MetricsQuery != "" {
				return
			}
		}
	}
	p.addf("k8s", "an autoscaler scales on the External metric %s, but no ConfigMap holds a prometheus-adapter externalRule (config.yaml) serving it", consumerLagMetric)
}

// ---------------------------------------------------------------------------
// Migrations.

// checkMigrateJob requires a Job that runs `migrate` for d with d's image,
// AID_ENV=production and the owner's login from a Secret other than the
// service's; d itself must not migrate (no migrate init container, no owner
// login in any of its containers).
func checkMigrateJob(p *problems, d deployment, s serviceSpec, jobs []deployment, jobTyped map[string]*batchv1.Job, configMaps map[string]map[string]string) {
	where := d.String()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return
	}
	c := pod.Containers[0]
	for _, ic := range pod.InitContainers {
		if slices.Contains(ic.Args, "migrate") {
			p.addf(where, "init container %q migrates: a Deployment must not migrate itself (every replica, every restart); a Job runs `migrate` once per release", ic.Name)
		}
	}
	for _, x := range append(slices.Clone(pod.Containers), pod.InitContainers...) {
		if x.hasEnv("AID_MIGRATE_DATABASE_URL") {
			p.addf(where, "container %q holds the owner's login AID_MIGRATE_DATABASE_URL: only the migrate Job may", x.Name)
		}
	}
	var job *deployment
	for i, j := range jobs {
		if js := j.Spec.Template.Spec; len(js.Containers) == 1 && slices.Equal(js.Containers[0].Args, []string{"migrate"}) && js.Containers[0].Image == c.Image {
			job = &jobs[i]
			break
		}
	}
	if job == nil {
		p.addf(where, "no Job runs `migrate` (args: [migrate]) with the service's image %q before it rolls", c.Image)
		return
	}
	m := job.Spec.Template.Spec.Containers[0]
	mw := fmt.Sprintf("%s container %q", job.String(), m.Name)
	menv, _ := m.environment(configMaps)
	checkProduction(p, mw, s, false, func(name string) (string, bool) { v, ok := menv[name]; return v, ok })
	if key := m.secretKey("AID_MIGRATE_DATABASE_URL"); key == "" {
		p.addf(mw, "AID_MIGRATE_DATABASE_URL must come from a Secret (valueFrom.secretKeyRef)")
	} else if key == c.secretKey("DATABASE_URL") {
		p.addf(mw, "AID_MIGRATE_DATABASE_URL is the service's own login %s: the owner needs a login of its own", key)
	}
	if t := jobTyped[job.Metadata.Name]; t != nil {
		if rp := t.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			p.addf(job.String(), "restartPolicy is %q, want Never or OnFailure", rp)
		}
	}
}

// checkJob applies the containers' rules (image tag, memory, non-root,
// read-only root, no escalation) to a Job's pod.
func checkJob(p *problems, j deployment) {
	pod := j.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		p.addf(j.String(), "no containers")
	}
	for _, c := range append(slices.Clone(pod.Containers), pod.InitContainers...) {
		checkContainerSecurity(p, fmt.Sprintf("%s container %q", j.String(), c.Name), c, pod.SecurityContext)
	}
}

// ---------------------------------------------------------------------------
// CloudNativePG.

// cnpgCluster is the part of a CloudNativePG Cluster (postgresql.cnpg.io/v1)
// the platform relies on; the operator's CRD checks the rest.
type cnpgCluster struct {
	Spec struct {
		Instances       int  `yaml:"instances"`
		MinSyncReplicas *int `yaml:"minSyncReplicas"`
		MaxSyncReplicas *int `yaml:"maxSyncReplicas"`
		PostgreSQL      struct {
			Synchronous *struct {
				Method string `yaml:"method"`
				Number int    `yaml:"number"`
			} `yaml:"synchronous"`
		} `yaml:"postgresql"`
		Bootstrap struct {
			InitDB *struct {
				Database string  `yaml:"database"`
				Owner    string  `yaml:"owner"`
				Secret   *keyRef `yaml:"secret"`
			} `yaml:"initdb"`
		} `yaml:"bootstrap"`
		Managed struct {
			Roles []cnpgRole `yaml:"roles"`
		} `yaml:"managed"`
		Storage struct {
			Size string `yaml:"size"`
		} `yaml:"storage"`
	} `yaml:"spec"`
}

// cnpgRole is one of the Cluster's managed roles.
type cnpgRole struct {
	Name           string  `yaml:"name"`
	Ensure         string  `yaml:"ensure"`
	Login          bool    `yaml:"login"`
	Superuser      bool    `yaml:"superuser"`
	CreateDB       bool    `yaml:"createdb"`
	CreateRole     bool    `yaml:"createrole"`
	Replication    bool    `yaml:"replication"`
	BypassRLS      bool    `yaml:"bypassrls"`
	PasswordSecret *keyRef `yaml:"passwordSecret"`
}

// minDatabaseInstances is the fewest PostgreSQL instances: a primary and two
// standbys, so one standby can be lost while commits still wait for another.
const minDatabaseInstances = 3

// ownerRole owns the schemas and runs the migrations (deploy/postgres/roles.sql).
const ownerRole = "aid_owner"

// validateDatabase checks the CloudNativePG Cluster: at least three
// instances, synchronous replication (postgresql.synchronous with number ≥ 1,
// or minSyncReplicas ≥ 1 ≤ maxSyncReplicas < instances), storage, the owner
// as the database's owner from a Secret, and one login role per service,
// none privileged, each with its password Secret.
func validateDatabase(objs []object, want []serviceSpec) []error {
	var p problems
	var clusters int
	for _, o := range objs {
		if o.APIVersion != "postgresql.cnpg.io/v1" || o.Kind != "Cluster" {
			p.addf(o.String(), "want only a postgresql.cnpg.io/v1 Cluster here, not %s %s", o.APIVersion, o.Kind)
			continue
		}
		clusters++
		var c cnpgCluster
		if err := o.node.Decode(&c); err != nil {
			p.addf(o.String(), "%v", err)
			continue
		}
		where, s := o.String(), c.Spec
		if o.Metadata.Name == "" || o.Metadata.Namespace == "" {
			p.addf(where, "metadata.name and metadata.namespace must be set: the services' DATABASE_URL names <name>-rw.<namespace>.svc")
		}
		if s.Instances < minDatabaseInstances {
			p.addf(where, "spec.instances is %d, want at least %d (a primary and two standbys)", s.Instances, minDatabaseInstances)
		}
		switch sync := s.PostgreSQL.Synchronous; {
		case sync != nil:
			if sync.Number < 1 || (sync.Method != "any" && sync.Method != "first") {
				p.addf(where, "spec.postgresql.synchronous wants method any or first and number ≥ 1, got %q and %d", sync.Method, sync.Number)
			} else if sync.Number >= s.Instances {
				p.addf(where, "spec.postgresql.synchronous.number %d leaves no standby to lose among %d instances", sync.Number, s.Instances)
			}
		case s.MinSyncReplicas != nil && s.MaxSyncReplicas != nil:
			if *s.MinSyncReplicas < 1 || *s.MaxSyncReplicas < *s.MinSyncReplicas || *s.MaxSyncReplicas >= s.Instances {
				p.addf(where, "want 1 ≤ minSyncReplicas ≤ maxSyncReplicas < instances, got %d, %d, %d", *s.MinSyncReplicas, *s.MaxSyncReplicas, s.Instances)
			}
		default:
			p.addf(where, "no synchronous replication: set spec.postgresql.synchronous (or minSyncReplicas and maxSyncReplicas); an asynchronous failover can lose acknowledged commits")
		}
		if s.Storage.Size == "" {
			p.addf(where, "spec.storage.size is not set")
		}
		if db := s.Bootstrap.InitDB; db == nil || db.Owner != ownerRole || db.Database == "" || db.Secret == nil || db.Secret.Name == "" {
			p.addf(where, "spec.bootstrap.initdb must create the database owned by %s with its password from a Secret", ownerRole)
		}
		for _, svc := range want {
			role := "aid_" + strings.ReplaceAll(svc.name, "-", "_")
			i := slices.IndexFunc(s.Managed.Roles, func(r cnpgRole) bool {
				return r.Name == role
			})
			if i < 0 {
				p.addf(where, "spec.managed.roles has no role %s for service %s", role, svc.name)
				continue
			}
			r := s.Managed.Roles[i]
			if r.Ensure == "absent" || !r.Login || r.PasswordSecret == nil || r.PasswordSecret.Name == "" {
				p.addf(where, "role %s must be present, log in, and take its password from a Secret", role)
			}
			if r.Superuser || r.CreateDB || r.CreateRole || r.Replication || r.BypassRLS {
				p.addf(where, "role %s has more rights than a service role (superuser, createdb, createrole, replication or bypassrls); the service refuses such a login", role)
			}
		}
	}
	if clusters != 1 {
		p.addf("postgres", "want exactly one CloudNativePG Cluster, found %d", clusters)
	}
	return p.errs
}

// ---------------------------------------------------------------------------
// NATS: the Helm values and the stream definitions.

// productionStreamReplicas is how many servers keep each stream.
const productionStreamReplicas = 3

// validateStreams checks the committed stream definitions (file name →
// JSON): one per stream of natsx.Streams, each file-stored on three servers.
// pkg/natsx's TestStreamDefinitions checks they equal natsx.Streams.
func validateStreams(files map[string][]byte) []error {
	var p problems
	want := map[string]bool{}
	for _, s := range natsx.Streams() {
		want[s.Name] = true
	}
	for name, data := range files {
		var cfg jetstream.StreamConfig
		if err := json.Unmarshal(data, &cfg); err != nil {
			p.addf(name, "%v", err)
			continue
		}
		if name != cfg.Name+".json" {
			p.addf(name, "holds stream %q: name the file after its stream", cfg.Name)
		}
		if !want[cfg.Name] {
			p.addf(name, "stream %q is not one of natsx.Streams", cfg.Name)
		}
		delete(want, cfg.Name)
		if cfg.Replicas != productionStreamReplicas {
			p.addf(name, "num_replicas is %d, want %d (R3: one server may be lost)", cfg.Replicas, productionStreamReplicas)
		}
		if cfg.Storage != jetstream.FileStorage {
			p.addf(name, "storage is %v, want file", cfg.Storage)
		}
		if cfg.Name == natsx.EventStream && (cfg.MaxBytes <= 0 || cfg.Discard != jetstream.DiscardOld) {
			p.addf(name, "max_bytes %d with discard %v: the event stream needs a byte limit with discard old, or it fills the file store and JetStream refuses every publish", cfg.MaxBytes, cfg.Discard)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		p.addf("nats/streams", "no definition of stream %s: run make nats-streams", name)
	}
	return p.errs
}

func readStreams(dir string) (map[string][]byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, f := range paths {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(f)] = data
	}
	return files, nil
}

// natsHelmValues is the part of the NATS chart's values the platform relies on.
type natsHelmValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
			TLS      struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"tls"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool `yaml:"enabled"`
				PVC     struct {
					Enabled bool `yaml:"enabled"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"jetstream"`
		NATS struct {
			TLS struct {
				Enabled    bool   `yaml:"enabled"`
				SecretName string `yaml:"secretName"`
			} `yaml:"tls"`
		} `yaml:"nats"`
		Merge map[string]any `yaml:"merge"`
	} `yaml:"config"`
}

// validateNATSHelmValues checks the chart values: a three-node cluster with
// TLS on client and route connections, JetStream on persistent file storage
// with sync_interval always, and the authorization of nats/nats.conf
// included.
func validateNATSHelmValues(docs []document) []error {
	var p problems
	if len(docs) != 1 {
		p.addf("nats/helm-values.yaml", "want one YAML document, found %d", len(docs))
		return p.errs
	}
	where := docs[0].source
	var v natsHelmValues
	if err := docs[0].node.Decode(&v); err != nil {
		p.addf(where, "%v", err)
		return p.errs
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != productionStreamReplicas {
		p.addf(where, "config.cluster: want enabled with %d replicas (R3 streams), got enabled=%t replicas=%d", productionStreamReplicas, c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.Cluster.TLS.Enabled {
		p.addf(where, "config.cluster.tls is not enabled: routes carry the events in clear")
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		p.addf(where, "config.jetstream: want JetStream enabled with fileStore on a PVC")
	}
	if got := fmt.Sprint(c.JetStream.Merge["sync_interval"]); got != "always" {
		p.addf(where, "config.jetstream.merge.sync_interval is %q, want always: the outbox relay treats an acknowledged publish as durable", got)
	}
	if !c.NATS.TLS.Enabled || c.NATS.TLS.SecretName == "" {
		p.addf(where, "config.nats.tls: want enabled with a secretName")
	}
	if inc, _ := c.Merge["$include"].(string); inc == "" {
		p.addf(where, "config.merge has no $include of the authorization block (deploy/nats/nats.conf)")
	}
	return p.errs
}
