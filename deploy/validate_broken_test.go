package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edubureau/studentaid/internal/devtools/natsdev"
	"github.com/edubureau/studentaid/pkg/natsx"
)

// The validators must fail on broken manifests. Each case below takes a
// small valid fixture, breaks one thing, and expects the validator to name
// it; the fixtures themselves must pass, so every failure is the mutation's.

var demoService = []serviceSpec{{"demo", 9100, 8100, []string{"AID_SEAL_KEYS"}, nil}}

// hashOnlyService is the fixtures' demo as a service that hashes but never
// seals (as data-comparison does), and needs a setting of its own.
var hashOnlyService = []serviceSpec{{"demo", 9100, 8100, []string{"AID_HASH_KEYS"}, map[string]string{"DEMO_ACCOUNT": "DEV-ACCOUNT"}}}

const k8sFixture = `apiVersion: v1
kind: Namespace
metadata:
  name: student-aid
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: aid-config
  namespace: student-aid
data:
  AID_ENV: production
  AID_AUTH_ISSUER: https://idp.example.internal
  DEMO_GRPC_ADDR: "0.0.0.0:9100"
  DEMO_HTTP_ADDR: "0.0.0.0:8100"
  NATS_URL: tls://nats:4222
  AID_AUTH_PUBLIC_KEYS: /etc/aid/keys/auth.pub.pem
  OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4317
---
apiVersion: v1
kind: Secret
metadata:
  name: aid-secrets
  namespace: student-aid
stringData:
  DEMO_DATABASE_URL: REPLACE_ME
  DEMO_NATS_NKEY_SEED: REPLACE_ME
  MIGRATE_DATABASE_URL: REPLACE_ME
  AID_SEAL_KEYS: REPLACE_ME
  AID_HASH_KEYS: REPLACE_ME
  AID_TRAIL_SIGNING_KEYS: REPLACE_ME
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
  namespace: student-aid
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  namespace: student-aid
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: demo
  template:
    metadata:
      labels:
        app.kubernetes.io/name: demo
        app.kubernetes.io/part-of: student-aid
    spec:
      securityContext:
        runAsNonRoot: true
      containers:
        - name: demo
          image: registry.example.com/studentaid/demo:v1.0.0
          ports:
            - name: grpc
              containerPort: 9100
            - name: http
              containerPort: 8100
          envFrom:
            - configMapRef:
                name: aid-config
          env:
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: aid-secrets
                  key: DEMO_DATABASE_URL
            - name: AID_SEAL_KEYS
              valueFrom:
                secretKeyRef:
                  name: aid-secrets
                  key: AID_SEAL_KEYS
            - name: AID_NATS_NKEY_SEED
              valueFrom:
                secretKeyRef:
                  name: aid-secrets
                  key: DEMO_NATS_NKEY_SEED
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              memory: 256Mi
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8100
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
---
apiVersion: v1
kind: Service
metadata:
  name: demo
  namespace: student-aid
spec:
  selector:
    app.kubernetes.io/name: demo
  ports:
    - name: grpc
      port: 9100
      targetPort: grpc
    - name: http
      port: 8100
      targetPort: http
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: demo
  namespace: student-aid
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: demo
---
apiVersion: batch/v1
kind: Job
metadata:
  name: demo-migrate
  namespace: student-aid
spec:
  backoffLimit: 3
  template:
    metadata:
      labels:
        app.kubernetes.io/component: migrate
    spec:
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
      containers:
        - name: migrate
          image: registry.example.com/studentaid/demo:v1.0.0
          args: ["migrate"]
          envFrom:
            - configMapRef:
                name: aid-config
          env:
            - name: AID_MIGRATE_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: aid-secrets
                  key: MIGRATE_DATABASE_URL
          resources:
            requests:
              cpu: 50m
              memory: 32Mi
            limits:
              memory: 100Mi
          securityContext:
            readOnlyRootFilesystem: True
            allowPrivilegeEscalation: False
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: demo
  namespace: student-aid
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: demo
  minReplicas: 2
  maxReplicas: 6
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
    - type: External
      external:
        metric:
          name: aid_consumer_lag
          selector:
            matchLabels:
              consumer: demo
        target:
          type: AverageValue
          averageValue: "500"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: adapter-rules
  namespace: student-aid
data:
  config.yaml: |
    externalRules:
      - seriesQuery: 'aid_consumer_lag{consumer!=""}'
        name: {as: aid_consumer_lag}
        metricsQuery: max by (consumer) (<<.Series>>{<<.LabelMatchers>>})
`

const composeFixture = `name: fixture
services:
  postgres:
    image: postgres:15
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
  nats:
    image: nats:2.12-alpine
    volumes:
      - ./nats/nats.conf:/etc/nats/nats.conf:ro
      - natsdata:/data
    healthcheck:
      test: ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:8222/healthz"]
  jaeger:
    image: jaegertracing/jaeger:2.13.0
    ports: ["4317:4317", "4318:4318", "16686:16686"]
    healthcheck:
      test: ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:13133/status"]
  demo-migrate:
    build:
      context: ..
      dockerfile: deploy/docker/Dockerfile
      args: {SERVICE: demo}
    command: ["migrate"]
    restart: "no"
    environment:
      AID_ENV: production
      AID_MIGRATE_DATABASE_URL: postgres://aid_owner:${AID_DB_OWNER_PASSWORD:?required}@postgres:5432/aid
    depends_on:
      postgres: {condition: service_healthy}
  demo:
    build:
      context: ..
      dockerfile: deploy/docker/Dockerfile
      args: {SERVICE: demo}
    secrets: [auth_public_key, nats_seed_demo]
    environment:
      AID_ENV: "production"
      AID_AUTH_ISSUER: ${AID_AUTH_ISSUER:?required}
      DEMO_GRPC_ADDR: 0.0.0.0:9100
      DEMO_HTTP_ADDR: 0.0.0.0:8100
      DATABASE_URL: postgres://aid_demo:${AID_DB_DEMO_PASSWORD:?required}@postgres:5432/aid
      NATS_URL: tls://nats:4222
      AID_NATS_NKEY_SEED_FILE: /run/secrets/nats_seed_demo
      AID_AUTH_PUBLIC_KEYS: /run/secrets/auth_public_key
      AID_SEAL_KEYS: ${AID_SEAL_KEYS:?required}
      OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4317
    depends_on:
      postgres: {condition: service_healthy}
      nats: {condition: service_healthy}
      jaeger: {condition: service_started}
      demo-migrate: {condition: service_completed_successfully}
    healthcheck:
      test: ["CMD", "/healthcheck", "http://127.0.0.1:8100/readyz"]
secrets:
  auth_public_key:
    file: ./secrets/auth.pub.pem
  nats_seed_demo:
    file: ./secrets/nats/demo.nk
  nats_seed_admin:
    file: ./secrets/nats/admin.nk
volumes:
  natsdata:
`

var natsFixture = `port: 4222
http_port: 8222
tls {
  cert_file: "/etc/nats/tls/server.crt"
  key_file: "/etc/nats/tls/server.key"
  ca_file: "/etc/nats/tls/ca.crt"
}
jetstream {
  store_dir: /data/jetstream
  sync_interval: always
}
include "nkeys.conf"
` + natsdev.ConfBegin + natsdev.AuthorizationConf() + natsdev.ConfEnd

// The container environment entries of the demo's sealing and hashing keys.
const (
	k8sSealKeyEnv = "            - name: AID_SEAL_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: AID_SEAL_KEYS\n"
	k8sHashKeyEnv = "            - name: AID_HASH_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: AID_HASH_KEYS\n"
)

// k8sHashOnlyFixture and composeHashOnlyFixture are the valid fixtures of
// hashOnlyService: the hashing key instead of the sealing key, and its setting.
var (
	k8sHashOnlyFixture = strings.NewReplacer(k8sSealKeyEnv, k8sHashKeyEnv,
		"  AID_ENV: production\n", "  AID_ENV: production\n  DEMO_ACCOUNT: \"4000 1234\"\n").Replace(k8sFixture)
	composeHashOnlyFixture = strings.Replace(composeFixture, "      AID_SEAL_KEYS: ${AID_SEAL_KEYS:?required}\n",
		"      AID_HASH_KEYS: ${AID_HASH_KEYS:?required}\n      DEMO_ACCOUNT: ${DEMO_ACCOUNT:?required}\n", 1)
)

const kustomizationFixture = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: student-aid
resources:
  - a.yaml
  - b.yaml
`

var kustomizationFixtureFiles = []string{"a.yaml", "b.yaml"}

const dockerfileFixture = `FROM golang:1.26 AS build
ARG SERVICE
RUN go build -o /out/app ./services/${SERVICE}/cmd/${SERVICE}
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER nonroot:nonroot
ENTRYPOINT ["/app"]
`

// mutate replaces the single occurrence of old in base.
func mutate(t *testing.T, base, old, replacement string) string {
	t.Helper()
	if n := strings.Count(base, old); n != 1 {
		t.Fatalf("fixture: %q occurs %d times, want exactly once", old, n)
	}
	return strings.Replace(base, old, replacement, 1)
}

func kubernetesErrors(text string, want []serviceSpec) []error {
	docs, err := parseDocuments("fixture.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	objs, errs := decodeObjects(docs)
	return append(errs, validateKubernetes(objs, want, nil)...)
}

func kustomizationErrors(text string, files []string) []error {
	docs, err := parseDocuments("kustomization.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	k, err := decodeKustomization(docs)
	if err != nil {
		return []error{err}
	}
	return validateKustomization(k, files)
}

func composeErrors(text string, want []serviceSpec) []error {
	docs, err := parseDocuments("compose.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	c, err := decodeCompose(docs)
	if err != nil {
		return []error{err}
	}
	return validateCompose(c, want, nil)
}

func natsErrors(t *testing.T, text string) []error {
	t.Helper()
	file := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return validateNATSConfig(file)
}

func TestValidatorsAcceptFixtures(t *testing.T) {
	t.Parallel()
	reportAll(t, kubernetesErrors(k8sFixture, demoService))
	reportAll(t, kustomizationErrors(kustomizationFixture, kustomizationFixtureFiles))
	reportAll(t, composeErrors(composeFixture, demoService))
	reportAll(t, kubernetesErrors(k8sHashOnlyFixture, hashOnlyService))
	reportAll(t, composeErrors(composeHashOnlyFixture, hashOnlyService))
	for _, f := range []string{k8sHashOnlyFixture, composeHashOnlyFixture} {
		if !strings.Contains(f, "DEMO_ACCOUNT") || strings.Contains(f, "AID_SEAL_KEYS: ${") || strings.Contains(f, "key: AID_SEAL_KEYS") {
			t.Errorf("hash-only fixture was not derived: %s", f)
		}
	}
	reportAll(t, natsErrors(t, natsFixture))
	reportAll(t, validateDockerfile(dockerfileFixture))
}

func TestValidatorsRejectBrokenManifests(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, text string) []error
	var (
		k8s check = func(_ *testing.T, text string) []error { return kubernetesErrors(text, demoService) }
		kus check = func(_ *testing.T, text string) []error {
			return kustomizationErrors(text, kustomizationFixtureFiles)
		}
		compose     check = func(_ *testing.T, text string) []error { return composeErrors(text, demoService) }
		k8sHash     check = func(_ *testing.T, text string) []error { return kubernetesErrors(text, hashOnlyService) }
		composeHash check = func(_ *testing.T, text string) []error { return composeErrors(text, hashOnlyService) }
		nats        check = natsErrors
		docker      check = func(_ *testing.T, text string) []error { return validateDockerfile(text) }
	)
	tests := []struct {
		name     string
		validate check
		fixture  string
		old, new string
		want     string
	}{
		// Kubernetes.
		{"yaml syntax error", k8s, k8sFixture, "replicas: 2", "replicas: [2", "document 5"},
		{"memory limit above 256Mi", k8s, k8sFixture, "memory: 256Mi", "memory: 512Mi", "memory limit 512Mi exceeds 256Mi"},
		{"memory limit in plain bytes above 256Mi", k8s, k8sFixture, "memory: 256Mi", "memory: 300000000", "exceeds 256Mi"},
		{"no memory limit", k8s, k8sFixture, "            limits:\n              memory: 256Mi\n", "", "no resources.limits.memory"},
		{"unparsable memory limit", k8s, k8sFixture, "memory: 256Mi", "memory: lots", "unsupported quantity"},
		{"request above limit", k8s, k8sFixture, "memory: 128Mi", "memory: 200Gi", "exceeds its limit"},
		{"no readiness probe", k8s, k8sFixture, "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n", "", "readinessProbe: want an httpGet probe"},
		{"readiness probe on /healthz", k8s, k8sFixture, "path: /readyz", "path: /healthz", `readinessProbe path is "/healthz"`},
		{"no liveness probe", k8s, k8sFixture, "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: 8100\n", "", "livenessProbe: want an httpGet probe"},
		{"liveness probe on the grpc port", k8s, k8sFixture, "port: 8100\n          securityContext", "port: grpc\n          securityContext", "livenessProbe port \"grpc\" is not the http container port"},
		{"runs as root", k8s, k8sFixture, "    spec:\n      securityContext:\n        runAsNonRoot: true\n      containers:\n        - name: demo", "    spec:\n      securityContext:\n        runAsNonRoot: false\n      containers:\n        - name: demo", "runAsNonRoot is not true"},
		{"writable root filesystem", k8s, k8sFixture, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem is not true"},
		{"privilege escalation", k8s, k8sFixture, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation is not false"},
		{"one replica", k8s, k8sFixture, "replicas: 2", "replicas: 1", "spec.replicas must be at least 2"},
		{"latest image", k8s, k8sFixture, "demo:v1.0.0\n          ports:", "demo:latest\n          ports:", "needs a version tag"},
		{"wrong namespace", k8s, k8sFixture, "kind: Service\nmetadata:\n  name: demo\n  namespace: student-aid", "kind: Service\nmetadata:\n  name: demo\n  namespace: default", `metadata.namespace is "default"`},
		{"no name", k8s, k8sFixture, "  name: default-deny-all\n", "", "metadata.name is missing"},
		{"no kind", k8s, k8sFixture, "kind: PodDisruptionBudget\n", "", "kind is missing"},
		{"service selects other pods", k8s, k8sFixture, "  selector:\n    app.kubernetes.io/name: demo\n", "  selector:\n    app.kubernetes.io/name: other\n", "no Service selects the pod labels"},
		{"service without http port", k8s, k8sFixture, "    - name: http\n      port: 8100\n      targetPort: http\n", "", "has no port named http"},
		{"service targets a missing port", k8s, k8sFixture, "targetPort: grpc", "targetPort: grcp", `targets "grcp"`},
		{"no pod disruption budget", k8s, k8sFixture, "kind: PodDisruptionBudget", "kind: ResourceQuota", "no PodDisruptionBudget selects"},
		{"pdb blocks every eviction", k8s, k8sFixture, "minAvailable: 1", "minAvailable: 2", "blocks every eviction"},
		{"deployment selector misses its pods", k8s, k8sFixture, "    matchLabels:\n      app.kubernetes.io/name: demo\n  template", "    matchLabels:\n      app.kubernetes.io/name: dmeo\n  template", "does not match the pod template labels"},
		{"secret key missing", k8s, k8sFixture, "                  key: AID_SEAL_KEYS", "                  key: SEAL_KEYS", `Secret aid-secrets has no key "SEAL_KEYS"`},
		{"configmap missing", k8s, k8sFixture, "                name: aid-config\n          env:\n            - name: DATABASE_URL", "                name: aid-settings\n          env:\n            - name: DATABASE_URL", `ConfigMap "aid-settings", which is not defined`},
		{"real secret value", k8s, k8sFixture, "DEMO_DATABASE_URL: REPLACE_ME", "DEMO_DATABASE_URL: postgres://aid:hunter2@db/aid", "must be the placeholder"},
		{"seal keys as a literal", k8s, k8sFixture, "            - name: AID_SEAL_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: AID_SEAL_KEYS\n", "            - name: AID_SEAL_KEYS\n              value: k:ZGV2\n", "AID_SEAL_KEYS must come from a Secret"},
		{"seal keys missing", k8s, k8sFixture, "            - name: AID_SEAL_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: AID_SEAL_KEYS\n", "", "environment variable AID_SEAL_KEYS is not set"},
		{"hash keys to a service that does not hash", k8s, k8sFixture, "                  key: AID_SEAL_KEYS\n", "                  key: AID_SEAL_KEYS\n            - name: AID_HASH_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: AID_HASH_KEYS\n", "demo gets AID_HASH_KEYS, which it does not use"},
		{"database login shared", k8s, k8sFixture, "                  key: DEMO_DATABASE_URL", "                  key: MIGRATE_DATABASE_URL", "want the service's own role's key DEMO_DATABASE_URL"},
		{"no migrate job", k8s, k8sFixture, `          args: ["migrate"]` + "\n", "", "no Job runs `migrate`"},
		{"migrate job of another image", k8s, k8sFixture, "          image: registry.example.com/studentaid/demo:v1.0.0\n          args:", "          image: registry.example.com/studentaid/other:v1.0.0\n          args:", "no Job runs `migrate` (args: [migrate]) with the service's image"},
		{"deployment migrates itself", k8s, k8sFixture, "          securityContext:\n            readOnlyRootFilesystem: true\n", "          securityContext:\n            readOnlyRootFilesystem: true\n            allowPrivilegeEscalation: false\n      initContainers:\n        - name: migrate\n          image: registry.example.com/studentaid/demo:v1.0.0\n          args: [migrate]\n          resources: {limits: {memory: 64Mi}}\n          securityContext:\n            readOnlyRootFilesystem: true\n", "a Deployment must not migrate itself"},
		{"migrate job restarts always", k8s, k8sFixture, "restartPolicy: Never", "restartPolicy: Always", `restartPolicy is "Always"`},
		{"migrate job runs as root", k8s, k8sFixture, "      restartPolicy: Never\n      securityContext:\n        runAsNonRoot: true\n", "      restartPolicy: Never\n", `(Job demo-migrate) container "migrate": runAsNonRoot is not true`},
		{"owner login as a literal", k8s, k8sFixture, "            - name: AID_MIGRATE_DATABASE_URL\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: MIGRATE_DATABASE_URL\n", "            - name: AID_MIGRATE_DATABASE_URL\n              value: postgres://aid_owner@db/aid\n", "AID_MIGRATE_DATABASE_URL must come from a Secret"},
		{"service holds the owner login", k8s, k8sFixture, "                  key: DEMO_DATABASE_URL\n", "                  key: DEMO_DATABASE_URL\n            - name: AID_MIGRATE_DATABASE_URL\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: MIGRATE_DATABASE_URL\n", `container "demo" holds the owner's login AID_MIGRATE_DATABASE_URL`},
		{"public keys not configured", k8s, k8sFixture, "  AID_AUTH_PUBLIC_KEYS: /etc/aid/keys/auth.pub.pem\n", "", "AID_AUTH_PUBLIC_KEYS is not set"},
		{"http address on loopback", k8s, k8sFixture, `DEMO_HTTP_ADDR: "0.0.0.0:8100"`, `DEMO_HTTP_ADDR: "127.0.0.1:8100"`, "listens on loopback only"},
		{"http address port drift", k8s, k8sFixture, `DEMO_HTTP_ADDR: "0.0.0.0:8100"`, `DEMO_HTTP_ADDR: "0.0.0.0:8200"`, "does not match container port 8100"},
		{"grpc address unset", k8s, k8sFixture, `  DEMO_GRPC_ADDR: "0.0.0.0:9100"` + "\n", "", "DEMO_GRPC_ADDR is not set"},
		{"no default deny", k8s, k8sFixture, "  policyTypes: [Ingress, Egress]", "  policyTypes: [Ingress]", "no default-deny NetworkPolicy"},
		{"no namespace object", k8s, k8sFixture, "kind: Namespace", "kind: LimitRange", "want exactly one Namespace"},
		{"missing service deployment", k8s, k8sFixture, "kind: Deployment\nmetadata:\n  name: demo", "kind: Deployment\nmetadata:\n  name: demo2", "no Deployment for service demo"},

		{"not in production", k8s, k8sFixture, "  AID_ENV: production\n", "  AID_ENV: development\n", `(Deployment demo): AID_ENV is "development", want production`},
		{"AID_ENV unset", k8s, k8sFixture, "  AID_ENV: production\n", "", `AID_ENV is "", want production`},
		{"migrate step not in production", k8s, k8sFixture, "                  key: MIGRATE_DATABASE_URL\n", "                  key: MIGRATE_DATABASE_URL\n            - name: AID_ENV\n              value: development\n", `(Job demo-migrate) container "migrate": AID_ENV is "development"`},
		{"development issuer", k8s, k8sFixture, "AID_AUTH_ISSUER: https://idp.example.internal", "AID_AUTH_ISSUER: studentaid-dev", "AID_AUTH_ISSUER is the development issuer"},
		{"trail signing key to a service that does not sign", k8s, k8sFixture, "                  key: AID_SEAL_KEYS\n", "                  key: AID_SEAL_KEYS\n            - name: AID_TRAIL_SIGNING_KEYS\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: AID_TRAIL_SIGNING_KEYS\n", "demo gets AID_TRAIL_SIGNING_KEYS, which it does not use"},
		{"sealing key to a service that only hashes", k8sHash, k8sHashOnlyFixture, k8sHashKeyEnv, k8sHashKeyEnv + k8sSealKeyEnv, "demo gets AID_SEAL_KEYS, which it does not use"},
		{"own setting at its development value", k8sHash, k8sHashOnlyFixture, `DEMO_ACCOUNT: "4000 1234"`, "DEMO_ACCOUNT: DEV-ACCOUNT", `DEMO_ACCOUNT is the development value "DEV-ACCOUNT"`},
		{"own setting missing", k8sHash, k8sHashOnlyFixture, `  DEMO_ACCOUNT: "4000 1234"` + "\n", "", "environment variable DEMO_ACCOUNT is not set"},

		// Strict decoding into the Kubernetes types.
		{"unknown field in a deployment", k8s, k8sFixture, "spec:\n  replicas: 2\n", "spec:\n  replicas: 2\n  replica: 3\n", `unknown field "replica"`},
		{"misplaced field in a container", k8s, k8sFixture, "          ports:\n            - name: grpc\n", "          port:\n            - name: grpc\n", `unknown field "port"`},
		{"wrong type in a service", k8s, k8sFixture, "      port: 9100\n", "      port: [9100]\n", "strict decoding into v1 Service"},
		{"unknown kind", k8s, k8sFixture, "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", "not a built-in kind the validator knows"},

		// Autoscaling.
		{"hpa below two replicas", k8s, k8sFixture, "minReplicas: 2", "minReplicas: 1", "minReplicas must be at least 2"},
		{"hpa without minReplicas", k8s, k8sFixture, "  minReplicas: 2\n", "", "minReplicas must be at least 2 (unset means 1)"},
		{"hpa cannot grow", k8s, k8sFixture, "maxReplicas: 6", "maxReplicas: 2", "leaves no room above minReplicas"},
		{"no hpa", k8s, k8sFixture, "kind: HorizontalPodAutoscaler\nmetadata:\n  name: demo\n  namespace: student-aid\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: demo", "kind: HorizontalPodAutoscaler\nmetadata:\n  name: demo\n  namespace: student-aid\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: other", "want exactly one HorizontalPodAutoscaler"},
		{"hpa without cpu", k8s, k8sFixture, "        name: cpu\n", "        name: memory\n", "no Resource metric on cpu"},
		{"hpa without consumer lag", k8s, k8sFixture, "          name: aid_consumer_lag\n          selector", "          name: aid_consumer_pending\n          selector", "no External (AverageValue) or Pods metric aid_consumer_lag"},
		{"hpa lag of another consumer", k8s, k8sFixture, "              consumer: demo\n", "              consumer: payout\n", "must select consumer=demo"},
		{"no adapter rule", k8s, k8sFixture, "        name: {as: aid_consumer_lag}\n", "        name: {as: consumer_lag}\n", "no ConfigMap holds a prometheus-adapter externalRule"},

		// Kustomization.
		{"manifest not listed", kus, kustomizationFixture, "  - b.yaml\n", "", "manifest b.yaml is not listed"},
		{"listed file does not exist", kus, kustomizationFixture, "  - b.yaml\n", "  - b.yaml\n  - c.yaml\n", "resource c.yaml does not exist"},
		{"kustomization namespace", kus, kustomizationFixture, "namespace: student-aid", "namespace: default", `namespace is "default"`},

		// Compose.
		{"service without healthcheck", compose, composeFixture, "    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready\"]\n", "", "service postgres: no healthcheck"},
		{"healthcheck disabled", compose, composeFixture, `test: ["CMD-SHELL", "pg_isready"]`, `test: ["NONE"]`, "service postgres: no healthcheck"},
		{"depends on an unknown service", compose, composeFixture, "      jaeger: {condition: service_started}", "      jaeger: {condition: service_started}\n      redis: {condition: service_started}", `depends_on names unknown service "redis"`},
		{"depends on a typo", compose, composeFixture, "      nats: {condition: service_healthy}", "      natss: {condition: service_healthy}", `unknown service "natss"`},
		{"unknown condition", compose, composeFixture, "jaeger: {condition: service_started}", "jaeger: {condition: started}", `unknown condition "started"`},
		{"healthy without healthcheck", compose, composeFixture, "    healthcheck:\n      test: [\"CMD\", \"wget\", \"-q\", \"--spider\", \"http://127.0.0.1:13133/status\"]\n", "", "jaeger: no healthcheck"},
		{"service url not in depends_on", compose, composeFixture, "      jaeger: {condition: service_started}\n", "", "OTEL_EXPORTER_OTLP_ENDPOINT points at jaeger, which is not in depends_on"},
		{"wrong otlp endpoint", compose, composeFixture, "http://jaeger:4317", "http://localhost:4317", "OTEL_EXPORTER_OTLP_ENDPOINT is"},
		{"readyz not probed", compose, composeFixture, "http://127.0.0.1:8100/readyz", "http://127.0.0.1:8100/healthz", "does not probe /readyz"},
		{"undefined secret", compose, composeFixture, "secrets: [auth_public_key, nats_seed_demo]", "secrets: [auth_key, nats_seed_demo]", `uses secret "auth_key"`},
		{"undefined volume", compose, composeFixture, "natsdata:/data", "jsdata:/data", `uses volume "jsdata"`},
		{"service missing", compose, composeFixture, "  demo:\n", "  demo2:\n", "no service demo"},
		{"compose seal keys missing", compose, composeFixture, "      AID_SEAL_KEYS: ${AID_SEAL_KEYS:?required}\n", "", "environment variable AID_SEAL_KEYS is not set"},
		{"compose hash keys to a service that does not hash", compose, composeFixture, "      AID_SEAL_KEYS: ${AID_SEAL_KEYS:?required}\n", "      AID_SEAL_KEYS: ${AID_SEAL_KEYS:?required}\n      AID_HASH_KEYS: ${AID_HASH_KEYS:?required}\n", "demo gets AID_HASH_KEYS, which it does not use"},
		{"wrong jaeger image", compose, composeFixture, "jaegertracing/jaeger:2.13.0", "jaegertracing/all-in-one:1.60", "want jaegertracing/jaeger:2.13.0"},
		{"nats config not mounted", compose, composeFixture, "      - ./nats/nats.conf:/etc/nats/nats.conf:ro\n", "", "does not mount nats/nats.conf"},
		{"service logs in as the superuser", compose, composeFixture, "postgres://aid_demo:${AID_DB_DEMO_PASSWORD:?required}@", "postgres://postgres:${POSTGRES_PASSWORD:-postgres}@", `DATABASE_URL logs in as "postgres": want the service's own role aid_demo`},
		{"service logs in as the owner", compose, composeFixture, "postgres://aid_demo:${AID_DB_DEMO_PASSWORD:?required}@", "postgres://aid_owner:${AID_DB_OWNER_PASSWORD:?required}@", `DATABASE_URL logs in as "aid_owner"`},
		{"migrate as the service role", compose, composeFixture, "postgres://aid_owner:${AID_DB_OWNER_PASSWORD:?required}@", "postgres://aid_demo:${AID_DB_DEMO_PASSWORD:?required}@", `AID_MIGRATE_DATABASE_URL logs in as "aid_demo"`},
		{"no migrate step waited for", compose, composeFixture, "      demo-migrate: {condition: service_completed_successfully}\n", "", "depends on no `migrate` step"},
		{"migrate step merely started", compose, composeFixture, "demo-migrate: {condition: service_completed_successfully}", "demo-migrate: {condition: service_started}", "want service_completed_successfully"},
		{"migrate step restarts", compose, composeFixture, `    restart: "no"` + "\n", "", "service demo-migrate: no healthcheck"},
		{"compose: not in production", compose, composeFixture, `      AID_ENV: "production"`, `      AID_ENV: "development"`, `service demo: AID_ENV is "development", want production`},
		{"compose: migrate step not in production", compose, composeFixture, "      AID_ENV: production\n", "", `service demo-migrate: AID_ENV is "", want production`},
		{"compose: development issuer by default", compose, composeFixture, "${AID_AUTH_ISSUER:?required}", "${AID_AUTH_ISSUER:-studentaid-dev}", "AID_AUTH_ISSUER is the development issuer"},
		{"compose: sealing key to a service that only hashes", composeHash, composeHashOnlyFixture, "      AID_HASH_KEYS: ${AID_HASH_KEYS:?required}\n", "      AID_HASH_KEYS: ${AID_HASH_KEYS:?required}\n      AID_SEAL_KEYS: ${AID_SEAL_KEYS:?required}\n", "demo gets AID_SEAL_KEYS, which it does not use"},
		{"compose: own setting defaults to its development value", composeHash, composeHashOnlyFixture, "${DEMO_ACCOUNT:?required}", "${DEMO_ACCOUNT:-DEV-ACCOUNT}", `DEMO_ACCOUNT is the development value "DEV-ACCOUNT"`},
		{"dependency cycle", compose, composeFixture, "  postgres:\n    image: postgres:15\n", "  postgres:\n    image: postgres:15\n    depends_on: [demo]\n", "depends_on cycle"},

		// NATS.
		{"sync_interval commented out", nats, natsFixture, "  sync_interval: always", "  # sync_interval: always", "sync_interval is not always"},
		{"sync_interval a duration", nats, natsFixture, "sync_interval: always", "sync_interval: 2m", "sync_interval is not always"},
		{"misspelt field", nats, natsFixture, "sync_interval: always", "sync_intervall: always", `unknown field "sync_intervall"`},
		{"no jetstream", nats, natsFixture, "jetstream {\n  store_dir: /data/jetstream\n  sync_interval: always\n}\n", "", "JetStream is not enabled"},
		{"no monitoring port", nats, natsFixture, "http_port: 8222\n", "", "http_port is not set"},
		{"k8s: NATS without TLS", k8s, k8sFixture, "NATS_URL: tls://nats:4222", "NATS_URL: nats://nats:4222", "is not tls://"},
		{"k8s: another identity's NATS seed", k8s, k8sFixture, "key: DEMO_NATS_NKEY_SEED", "key: PAYOUT_NATS_NKEY_SEED", "want the service's own NATS identity's Secret key DEMO_NATS_NKEY_SEED"},
		{"compose: NATS without TLS", compose, composeFixture, "NATS_URL: tls://nats:4222", "NATS_URL: nats://nats:4222", "is not tls://"},
		{"compose: no NATS seed", compose, composeFixture, "      AID_NATS_NKEY_SEED_FILE: /run/secrets/nats_seed_demo\n", "", "each service logs in to NATS with its own NKey"},
		{"compose: the admin's seed", compose, composeFixture, "[auth_public_key, nats_seed_demo]", "[auth_public_key, nats_seed_demo, nats_seed_admin]", "another identity's NATS seed"},
		{"no tls", nats, natsFixture, "tls {\n  cert_file: \"/etc/nats/tls/server.crt\"\n  key_file: \"/etc/nats/tls/server.key\"\n  ca_file: \"/etc/nats/tls/ca.crt\"\n}\n", "", "no tls block"},
		{"payout may publish finance's orders", nats, natsFixture, `"aid.payout.>"`, `"aid.payout.>", "aid.finance.>"`, "identity payout has permissions"},
		{"no authorization", nats, natsFixture, natsdev.ConfBlock(natsFixture), "", "the authorization block is not natsx.Identities"},
		{"an anonymous user", nats, natsFixture, "include \"nkeys.conf\"\n", "include \"nkeys.conf\"\nno_auth_user: guest\n", "no_auth_user"},

		// Dockerfile.
		{"runtime not distroless", docker, dockerfileFixture, "gcr.io/distroless/static-debian12:nonroot", "alpine:3.22", "want gcr.io/distroless/static"},
		{"runs as root", docker, dockerfileFixture, "USER nonroot:nonroot", "USER root", `final USER is "root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			broken := mutate(t, tt.fixture, tt.old, tt.new)
			errs := tt.validate(t, broken)
			if len(errs) == 0 {
				t.Fatalf("broken document passed validation; want an error containing %q", tt.want)
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.want) {
					return
				}
			}
			t.Errorf("no error contains %q; got:", tt.want)
			for _, err := range errs {
				t.Log("  ", err)
			}
		})
	}
}

const databaseFixture = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: aid-postgres
  namespace: aid-db
spec:
  instances: 3
  postgresql:
    synchronous:
      method: any
      number: 1
  bootstrap:
    initdb:
      database: studentaid
      owner: aid_owner
      secret:
        name: aid-db-owner-login
  managed:
    roles:
      - name: aid_demo
        ensure: present
        login: true
        passwordSecret:
          name: aid-db-demo-login
  storage:
    size: 10Gi
`

const natsValuesFixture = `config:
  cluster:
    enabled: true
    replicas: 3
    tls: {enabled: true, secretName: nats-server-tls}
  jetstream:
    enabled: true
    fileStore:
      enabled: true
      pvc: {enabled: true, size: 10Gi}
    merge:
      sync_interval: always
  nats:
    tls: {enabled: true, secretName: nats-server-tls}
  merge:
    $include: aid/auth.conf
`

func databaseErrors(text string) []error {
	docs, err := parseDocuments("cluster.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	objs, errs := decodeObjects(docs)
	return append(errs, validateDatabase(objs, demoService)...)
}

func natsValuesErrors(text string) []error {
	docs, err := parseDocuments("helm-values.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	return validateNATSHelmValues(docs)
}

// streamFixtures are natsx.Streams at R3, as make nats-streams writes them.
func streamFixtures(t *testing.T, mutate func(*jetstream.StreamConfig)) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, cfg := range natsx.Streams() {
		cfg.Replicas = 3
		if mutate != nil {
			mutate(&cfg)
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		files[cfg.Name+".json"] = data
	}
	return files
}

func TestClusterValidators(t *testing.T) {
	t.Parallel()
	reportAll(t, databaseErrors(databaseFixture))
	reportAll(t, natsValuesErrors(natsValuesFixture))
	reportAll(t, validateStreams(streamFixtures(t, nil)))

	tests := []struct {
		name     string
		validate func(string) []error
		fixture  string
		old, new string
		want     string
	}{
		{"two database instances", databaseErrors, databaseFixture, "instances: 3", "instances: 2", "spec.instances is 2, want at least 3"},
		{"asynchronous replication", databaseErrors, databaseFixture, "    synchronous:\n      method: any\n      number: 1\n", "    parameters: {max_connections: \"700\"}\n", "no synchronous replication"},
		{"no standby waited for", databaseErrors, databaseFixture, "number: 1", "number: 0", "wants method any or first and number ≥ 1"},
		{"every standby waited for", databaseErrors, databaseFixture, "number: 1", "number: 3", "leaves no standby to lose"},
		{"legacy sync settings accepted only when sane", databaseErrors, databaseFixture, "    synchronous:\n      method: any\n      number: 1\n", "    {}\n  minSyncReplicas: 0\n  maxSyncReplicas: 2\n", "want 1 ≤ minSyncReplicas ≤ maxSyncReplicas < instances"},
		{"database owned by another role", databaseErrors, databaseFixture, "owner: aid_owner", "owner: app", "owned by aid_owner"},
		{"service role missing", databaseErrors, databaseFixture, "- name: aid_demo", "- name: aid_other", "has no role aid_demo"},
		{"service role superuser", databaseErrors, databaseFixture, "        login: true\n", "        login: true\n        superuser: true\n", "more rights than a service role"},
		{"service role without password", databaseErrors, databaseFixture, "        passwordSecret:\n          name: aid-db-demo-login\n", "", "take its password from a Secret"},
		{"no storage", databaseErrors, databaseFixture, "  storage:\n    size: 10Gi\n", "", "spec.storage.size is not set"},
		{"not a cluster", databaseErrors, databaseFixture, "kind: Cluster", "kind: Pooler", "want only a postgresql.cnpg.io/v1 Cluster"},

		{"one NATS node", natsValuesErrors, natsValuesFixture, "replicas: 3", "replicas: 1", "want enabled with 3 replicas"},
		{"NATS not clustered", natsValuesErrors, natsValuesFixture, "    enabled: true\n    replicas: 3", "    enabled: false\n    replicas: 3", "config.cluster: want enabled"},
		{"NATS without fsync", natsValuesErrors, natsValuesFixture, "sync_interval: always", "sync_interval: 2m", `sync_interval is "2m", want always`},
		{"NATS memory store", natsValuesErrors, natsValuesFixture, "    fileStore:\n      enabled: true\n", "    fileStore:\n      enabled: false\n", "fileStore on a PVC"},
		{"NATS without client TLS", natsValuesErrors, natsValuesFixture, "  nats:\n    tls: {enabled: true, secretName: nats-server-tls}\n", "", "config.nats.tls"},
		{"NATS routes in clear", natsValuesErrors, natsValuesFixture, "    tls: {enabled: true, secretName: nats-server-tls}\n  jetstream", "  jetstream", "config.cluster.tls is not enabled"},
		{"NATS without authorization", natsValuesErrors, natsValuesFixture, "  merge:\n    $include: aid/auth.conf\n", "", "no $include of the authorization block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			expectError(t, tt.validate(mutate(t, tt.fixture, tt.old, tt.new)), tt.want)
		})
	}

	streams := []struct {
		name  string
		files func(t *testing.T) map[string][]byte
		want  string
	}{
		{"stream R1", func(t *testing.T) map[string][]byte {
			t.Helper()
			return streamFixtures(t, func(c *jetstream.StreamConfig) { c.Replicas = 1 })
		}, "num_replicas is 1, want 3"},
		{"stream in memory", func(t *testing.T) map[string][]byte {
			t.Helper()
			return streamFixtures(t, func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage })
		}, "want file"},
		{"event stream without a byte limit", func(t *testing.T) map[string][]byte {
			t.Helper()
			return streamFixtures(t, func(c *jetstream.StreamConfig) {
				if c.Name == natsx.EventStream {
					c.MaxBytes = 0
				}
			})
		}, "the event stream needs a byte limit"},
		{"stream missing", func(t *testing.T) map[string][]byte {
			t.Helper()
			f := streamFixtures(t, nil)
			delete(f, natsx.EventStream+".json")
			return f
		}, "no definition of stream " + natsx.EventStream},
		{"unknown stream", func(t *testing.T) map[string][]byte {
			t.Helper()
			f := streamFixtures(t, nil)
			f["OTHER.json"] = []byte(`{"name":"OTHER","num_replicas":3,"storage":"file"}`)
			return f
		}, `stream "OTHER" is not one of natsx.Streams`},
	}
	for _, tt := range streams {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			expectError(t, validateStreams(tt.files(t)), tt.want)
		})
	}
}

// expectError fails t unless one of errs contains want.
func expectError(t *testing.T, errs []error, want string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), want) {
			return
		}
	}
	t.Errorf("no error contains %q; got:", want)
	for _, err := range errs {
		t.Log("  ", err)
	}
}
