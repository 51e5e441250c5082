package deploy

import (
	"strings"
	"testing"
)

// The web front end's checks on broken documents: the demo fixtures plus a
// front end "site" (as the console: HTTP only, a gateway beside it, its own
// signing key, its own role and migrate step), which the demo trusts.

var demoWeb = []webSpec{{
	name:     "site",
	http:     8200,
	required: map[string]string{"AID_OIDC_ISSUER": ""},
	refused:  map[string]string{"AID_CONSOLE_DEV_SIGNIN": "true"},
	secrets:  []string{"DATABASE_URL", "AID_OIDC_CLIENT_SECRET"},
}}

// k8sWebFixture is k8sFixture with the demo trusting the site's key, and
// the site's objects.
var k8sWebFixture = strings.NewReplacer(
	"  AID_AUTH_PUBLIC_KEYS: /etc/aid/keys/auth.pub.pem\n", "  AID_AUTH_PUBLIC_KEYS: /etc/aid/keys/auth.pub.pem,/etc/aid/keys/site.pub.pem\n",
	"          resources:\n            requests:\n              cpu: 100m\n", "          volumeMounts:\n            - name: auth-keys\n              mountPath: /etc/aid/keys\n          resources:\n            requests:\n              cpu: 100m\n",
	"            allowPrivilegeEscalation: false\n---\napiVersion: v1\nkind: Service", "            allowPrivilegeEscalation: false\n      volumes:\n        - name: auth-keys\n          secret:\n            secretName: aid-auth-keys\n---\napiVersion: v1\nkind: Service",
).Replace(k8sFixture) + `---
apiVersion: v1
kind: Secret
metadata:
  name: aid-auth-keys
  namespace: student-aid
stringData:
  auth.pub.pem: REPLACE_ME
  site.pub.pem: REPLACE_ME
---
apiVersion: v1
kind: Secret
metadata:
  name: site-token-key
  namespace: student-aid
stringData:
  token.pem: REPLACE_ME
---
apiVersion: v1
kind: Secret
metadata:
  name: site-secrets
  namespace: student-aid
stringData:
  SITE_DATABASE_URL: REPLACE_ME
  AID_OIDC_CLIENT_SECRET: REPLACE_ME
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: site-config
  namespace: student-aid
data:
  AID_ENV: production
  AID_AUTH_ISSUER: https://idp.example.internal
  SITE_ADDR: "0.0.0.0:8200"
  AID_OIDC_ISSUER: https://idp.example.internal
  OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4317
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: site
  namespace: student-aid
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: site
  template:
    metadata:
      labels:
        app.kubernetes.io/name: site
    spec:
      securityContext:
        runAsNonRoot: true
      containers:
        - name: site
          image: registry.example.com/studentaid/site:v1.0.0
          ports:
            - name: http
              containerPort: 8200
          envFrom:
            - configMapRef:
                name: site-config
          env:
            - name: AID_CONSOLE_API_GRPC
              value: 127.0.0.1:8080
            - name: AID_CONSOLE_API_BASE
              value: http://127.0.0.1:8080
            - name: AID_CONSOLE_TOKEN_KEY
              value: /etc/site/token.pem
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: site-secrets
                  key: SITE_DATABASE_URL
            - name: AID_OIDC_CLIENT_SECRET
              valueFrom:
                secretKeyRef:
                  name: site-secrets
                  key: AID_OIDC_CLIENT_SECRET
          volumeMounts:
            - name: token-key
              mountPath: /etc/site
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
            limits:
              memory: 256Mi
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
        - name: gateway
          image: registry.example.com/studentaid/gateway:v1.0.0
          ports:
            - name: gateway
              containerPort: 8080
          volumeMounts:
            - name: auth-keys
              mountPath: /etc/aid/keys
          resources:
            requests:
              cpu: 50m
              memory: 32Mi
            limits:
              memory: 128Mi
          readinessProbe:
            httpGet:
              path: /readyz
              port: gateway
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8080
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
      volumes:
        - name: token-key
          secret:
            secretName: site-token-key
        - name: auth-keys
          secret:
            secretName: aid-auth-keys
---
apiVersion: v1
kind: Service
metadata:
  name: site
  namespace: student-aid
spec:
  selector:
    app.kubernetes.io/name: site
  ports:
    - name: http
      port: 8200
      targetPort: http
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: site
  namespace: student-aid
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: site
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: site
  namespace: student-aid
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: site
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
---
apiVersion: batch/v1
kind: Job
metadata:
  name: site-migrate
  namespace: student-aid
spec:
  template:
    spec:
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
      containers:
        - name: migrate
          image: registry.example.com/studentaid/site:v1.0.0
          args: ["migrate"]
          env:
            - name: AID_ENV
              value: production
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
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
`

// composeWebFixture is composeFixture with the demo trusting the site's
// key, and the gateway, the site and its migrate step.
var composeWebFixture = strings.NewReplacer(
	"    secrets: [auth_public_key, nats_seed_demo]\n", "    secrets: [auth_public_key, site_public_key, nats_seed_demo]\n",
	"      AID_AUTH_PUBLIC_KEYS: /run/secrets/auth_public_key\n", "      AID_AUTH_PUBLIC_KEYS: /run/secrets/auth_public_key,/run/secrets/site_public_key\n",
	"secrets:\n  auth_public_key:\n", `  gateway:
    build:
      context: ..
      dockerfile: deploy/docker/Dockerfile
      args: {SERVICE: gateway, CMD_PATH: ./cmd/gateway}
    secrets: [auth_public_key, site_public_key]
    environment:
      AID_GATEWAY_ADDR: 0.0.0.0:8080
      DEMO_GRPC_UPSTREAM: demo:9100
    depends_on:
      demo: {condition: service_healthy}
    healthcheck:
      test: ["CMD", "/healthcheck", "http://127.0.0.1:8080/readyz"]
  site-migrate:
    build:
      context: ..
      dockerfile: deploy/docker/Dockerfile
      args: {SERVICE: site}
    command: ["migrate"]
    restart: "no"
    environment:
      AID_ENV: production
      AID_MIGRATE_DATABASE_URL: postgres://aid_owner:${AID_DB_OWNER_PASSWORD:?required}@postgres:5432/aid
    depends_on:
      postgres: {condition: service_healthy}
  site:
    build:
      context: ..
      dockerfile: deploy/docker/Dockerfile
      args: {SERVICE: site}
    secrets: [site_token_key]
    environment:
      AID_ENV: production
      AID_AUTH_ISSUER: ${AID_AUTH_ISSUER:?required}
      AID_OIDC_ISSUER: ${AID_OIDC_ISSUER:?required}
      AID_OIDC_CLIENT_SECRET: ${AID_OIDC_CLIENT_SECRET:?required}
      SITE_ADDR: 0.0.0.0:8200
      DATABASE_URL: postgres://aid_site:${AID_DB_SITE_PASSWORD:?required}@postgres:5432/aid
      AID_CONSOLE_API_GRPC: gateway:8080
      AID_CONSOLE_API_BASE: http://gateway:8080
      AID_CONSOLE_TOKEN_KEY: /run/secrets/site_token_key
      OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4317
    depends_on:
      postgres: {condition: service_healthy}
      site-migrate: {condition: service_completed_successfully}
      gateway: {condition: service_started}
      jaeger: {condition: service_started}
    healthcheck:
      test: ["CMD", "/healthcheck", "http://127.0.0.1:8200/readyz"]
secrets:
  site_token_key:
    file: ./secrets/site.pem
  site_public_key:
    file: ./secrets/site.pub.pem
  auth_public_key:
`,
).Replace(composeFixture)

func webKubernetesErrors(text string) []error {
	docs, err := parseDocuments("fixture.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	objs, errs := decodeObjects(docs)
	return append(errs, validateKubernetes(objs, demoService, demoWeb)...)
}

func webComposeErrors(text string) []error {
	docs, err := parseDocuments("compose.yaml", []byte(text))
	if err != nil {
		return []error{err}
	}
	c, err := decodeCompose(docs)
	if err != nil {
		return []error{err}
	}
	return validateCompose(c, demoService, demoWeb)
}

func TestWebValidators(t *testing.T) {
	t.Parallel()
	// Every replacement of the derivations took.
	if strings.Count(k8sWebFixture, "mountPath: /etc/aid/keys\n") != 2 || !strings.Contains(k8sWebFixture, "keys/auth.pub.pem,/etc/aid/keys/site.pub.pem") ||
		!strings.Contains(k8sWebFixture, "secretName: aid-auth-keys\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: demo") {
		t.Fatalf("Kubernetes web fixture was not derived: %s", k8sWebFixture)
	}
	if !strings.Contains(composeWebFixture, "site_public_key, nats_seed_demo]") || !strings.Contains(composeWebFixture, ",/run/secrets/site_public_key") ||
		!strings.Contains(composeWebFixture, "\n  gateway:\n") {
		t.Fatalf("Compose web fixture was not derived: %s", composeWebFixture)
	}
	reportAll(t, webKubernetesErrors(k8sWebFixture))
	reportAll(t, webComposeErrors(composeWebFixture))

	const siteTokenMount = "          volumeMounts:\n            - name: token-key\n              mountPath: /etc/site\n"
	type check func(text string) []error
	k8s, compose := check(webKubernetesErrors), check(webComposeErrors)
	tests := []struct {
		name     string
		validate check
		fixture  string
		old, new string
		want     string
	}{
		// Kubernetes.
		{"no deployment", k8s, k8sWebFixture, "kind: Deployment\nmetadata:\n  name: site\n", "kind: Deployment\nmetadata:\n  name: site2\n", "no Deployment for site"},
		{"no http port", k8s, k8sWebFixture, "            - name: http\n              containerPort: 8200\n", "            - name: web\n              containerPort: 8200\n", `container "site": no container port named http`},
		{"service without http", k8s, k8sWebFixture, "    - name: http\n      port: 8200\n", "    - name: web\n      port: 8200\n", "Service site has no port named http"},
		{"sidecar probe on a port it does not declare", k8s, k8sWebFixture, "              port: 8080\n", "              port: 8081\n", `container "gateway": livenessProbe port "8081" is not a port the container declares`},
		{"sidecar without readiness probe", k8s, k8sWebFixture, "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: gateway\n", "", `container "gateway": readinessProbe: want an httpGet probe`},
		{"hpa without cpu", k8s, k8sWebFixture, "  maxReplicas: 4\n  metrics:\n    - type: Resource\n      resource:\n        name: cpu\n", "  maxReplicas: 4\n  metrics:\n    - type: Resource\n      resource:\n        name: memory\n", "HorizontalPodAutoscaler site: no Resource metric on cpu"},
		{"not in production", k8s, k8sWebFixture, "  AID_ENV: production\n  AID_AUTH_ISSUER: https://idp.example.internal\n  SITE_ADDR", "  AID_ENV: development\n  AID_AUTH_ISSUER: https://idp.example.internal\n  SITE_ADDR", `(Deployment site): AID_ENV is "development"`},
		{"no identity provider", k8s, k8sWebFixture, "  AID_OIDC_ISSUER: https://idp.example.internal\n", "", "environment variable AID_OIDC_ISSUER is not set"},
		{"development sign-in", k8s, k8sWebFixture, "  AID_OIDC_ISSUER: https://idp.example.internal\n", "  AID_OIDC_ISSUER: https://idp.example.internal\n  AID_CONSOLE_DEV_SIGNIN: \"true\"\n", "AID_CONSOLE_DEV_SIGNIN is \"true\", which production refuses"},
		{"client secret as a literal", k8s, k8sWebFixture, "            - name: AID_OIDC_CLIENT_SECRET\n              valueFrom:\n                secretKeyRef:\n                  name: site-secrets\n                  key: AID_OIDC_CLIENT_SECRET\n", "            - name: AID_OIDC_CLIENT_SECRET\n              value: hunter2\n", "AID_OIDC_CLIENT_SECRET must come from a Secret"},
		{"listens on loopback", k8s, k8sWebFixture, `SITE_ADDR: "0.0.0.0:8200"`, `SITE_ADDR: "127.0.0.1:8200"`, "SITE_ADDR=\"127.0.0.1:8200\" listens on loopback only"},
		{"a NATS identity", k8s, k8sWebFixture, "                  key: SITE_DATABASE_URL\n", "                  key: SITE_DATABASE_URL\n            - name: AID_NATS_NKEY_SEED\n              valueFrom:\n                secretKeyRef:\n                  name: aid-secrets\n                  key: DEMO_NATS_NKEY_SEED\n", "holds a NATS identity"},
		{"a service's key", k8s, k8sWebFixture, "                  key: SITE_DATABASE_URL\n", "                  key: SITE_DATABASE_URL\n" + k8sSealKeyEnv, "site gets AID_SEAL_KEYS, which it does not use"},
		{"the database login of another", k8s, k8sWebFixture, "                  key: SITE_DATABASE_URL\n", "                  key: AID_OIDC_CLIENT_SECRET\n", "want the service's own role's key SITE_DATABASE_URL"},
		{"token key not mounted", k8s, k8sWebFixture, siteTokenMount, "", "AID_CONSOLE_TOKEN_KEY=/etc/site/token.pem is not in a Secret volume"},
		{"token key of another name", k8s, k8sWebFixture, "              value: /etc/site/token.pem\n", "              value: /etc/site/key.pem\n", `Secret site-token-key has no key "key.pem"`},
		{"token key beside the sidecar", k8s, k8sWebFixture, "            - name: auth-keys\n              mountPath: /etc/aid/keys\n          resources:\n            requests:\n              cpu: 50m\n", "            - name: auth-keys\n              mountPath: /etc/aid/keys\n            - name: token-key\n              mountPath: /etc/site\n          resources:\n            requests:\n              cpu: 50m\n", `container "gateway" also mounts site-token-key`},
		{"token key in another deployment", k8s, k8sWebFixture, "          secret:\n            secretName: aid-auth-keys\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: demo", "          secret:\n            secretName: site-token-key\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: demo", "Deployment demo also mounts site-token-key"},
		{"entry point not served", k8s, k8sWebFixture, "              value: 127.0.0.1:8080\n", "              value: 127.0.0.1:9090\n", "no other container of the pod declares port 9090"},
		{"entry point not a service", k8s, k8sWebFixture, "              value: 127.0.0.1:8080\n", "              value: gateway:8080\n", `AID_CONSOLE_API_GRPC="gateway:8080" names no Service port`},
		{"services do not trust its key", k8s, k8sWebFixture, "/etc/aid/keys/auth.pub.pem,/etc/aid/keys/site.pub.pem", "/etc/aid/keys/auth.pub.pem", "(Deployment demo): AID_AUTH_PUBLIC_KEYS \"/etc/aid/keys/auth.pub.pem\" does not list site.pub.pem"},
		{"its public key not in the secret", k8s, k8sWebFixture, "  site.pub.pem: REPLACE_ME\n", "", `Secret aid-auth-keys has no key "site.pub.pem"`},
		{"no migrate job", k8s, k8sWebFixture, "          image: registry.example.com/studentaid/site:v1.0.0\n          args:", "          image: registry.example.com/studentaid/other:v1.0.0\n          args:", "with the service's image \"registry.example.com/studentaid/site:v1.0.0\""},

		// Compose.
		{"compose: no service", compose, composeWebFixture, "  site:\n", "  website:\n", "no service site"},
		{"compose: healthcheck elsewhere", compose, composeWebFixture, "http://127.0.0.1:8200/readyz", "http://127.0.0.1:8200/healthz", "does not probe /readyz on port 8200"},
		{"compose: not in production", compose, composeWebFixture, "      AID_ENV: production\n      AID_AUTH_ISSUER: ${AID_AUTH_ISSUER:?required}\n      AID_OIDC", "      AID_ENV: development\n      AID_AUTH_ISSUER: ${AID_AUTH_ISSUER:?required}\n      AID_OIDC", `service site: AID_ENV is "development"`},
		{"compose: no identity provider", compose, composeWebFixture, "      AID_OIDC_ISSUER: ${AID_OIDC_ISSUER:?required}\n", "", "environment variable AID_OIDC_ISSUER is not set"},
		{"compose: owner login", compose, composeWebFixture, "postgres://aid_site:", "postgres://aid_owner:", "DATABASE_URL logs in as \"aid_owner\""},
		{"compose: no migrate step", compose, composeWebFixture, "      site-migrate: {condition: service_completed_successfully}\n", "", "service site: depends on no `migrate` step"},
		{"compose: uses NATS", compose, composeWebFixture, "      SITE_ADDR: 0.0.0.0:8200\n", "      SITE_ADDR: 0.0.0.0:8200\n      NATS_URL: tls://nats:4222\n", "sets NATS_URL: site does not use NATS"},
		{"compose: token key not mounted", compose, composeWebFixture, "    secrets: [site_token_key]\n", "", "does not mount the secret site_token_key"},
		{"compose: token key elsewhere", compose, composeWebFixture, "    secrets: [auth_public_key, site_public_key]\n", "    secrets: [auth_public_key, site_public_key, site_token_key]\n", "service gateway also mounts site_token_key"},
		{"compose: entry point unknown", compose, composeWebFixture, "      AID_CONSOLE_API_GRPC: gateway:8080\n", "      AID_CONSOLE_API_GRPC: gw:8080\n", `AID_CONSOLE_API_GRPC="gw:8080" names no service`},
		{"compose: entry point not waited for", compose, composeWebFixture, "      gateway: {condition: service_started}\n", "", "AID_CONSOLE_API_GRPC points at gateway, which is not in depends_on"},
		{"compose: services do not trust its key", compose, composeWebFixture, "/run/secrets/auth_public_key,/run/secrets/site_public_key", "/run/secrets/auth_public_key", "service demo: AID_AUTH_PUBLIC_KEYS \"/run/secrets/auth_public_key\" does not list /run/secrets/site_public_key"},
		{"compose: its public key not mounted", compose, composeWebFixture, "    secrets: [auth_public_key, site_public_key, nats_seed_demo]\n", "    secrets: [auth_public_key, nats_seed_demo]\n", "service demo: does not mount the secret site_public_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			expectError(t, tt.validate(mutate(t, tt.fixture, tt.old, tt.new)), tt.want)
		})
	}
}
