package deploy

import (
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
)

// webSpec is a web front end of the platform (the console, docs/console.md):
// HTTP alone, no gRPC and no NATS, a schema of its own migrated by a Job,
// and calls to the services through the gateway with call tokens it signs
// with a key of its own, which the services trust.
type webSpec struct {
	name string
	http int
	// required are settings of its own that production needs, each with
	// the development value production refuses.
	required map[string]string
	// refused are settings production refuses at a value (the front end
	// would not start with it).
	refused map[string]string
	// secrets must come from a Secret in Kubernetes.
	secrets []string
}

// platformWeb are the web front ends every deployment runs. The console
// signs its users in at the identity provider (AID_OIDC_ISSUER; without it
// nobody can sign in, as production refuses the development sign-in) and
// refuses, in production, the development sign-in and cookies without
// Secure (services/console/cmd/console).
var platformWeb = []webSpec{{
	name:     "console",
	http:     8090,
	required: map[string]string{"AID_OIDC_ISSUER": "", "AID_OIDC_CLIENT_ID": "", "AID_OIDC_REDIRECT_URL": ""},
	refused:  map[string]string{"AID_CONSOLE_DEV_SIGNIN": "true", "AID_CONSOLE_SECURE_COOKIES": "false"},
	secrets:  []string{"DATABASE_URL", "AID_OIDC_CLIENT_SECRET"},
}}

// webRequiredEnv must be set for a web front end: its database, the
// services' issuer its tokens carry, its signing key, the entry point it
// calls, and the trace collector.
var webRequiredEnv = []string{"DATABASE_URL", "AID_AUTH_ISSUER", "AID_CONSOLE_TOKEN_KEY", "AID_CONSOLE_API_GRPC", "AID_CONSOLE_API_BASE", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// webTokenKeyEnv names the file of the front end's private signing key.
const webTokenKeyEnv = "AID_CONSOLE_TOKEN_KEY"

// webAPIGRPCEnv is the h2c gRPC address (host:port) of the entry point the
// front end calls.
const webAPIGRPCEnv = "AID_CONSOLE_API_GRPC"

// service is w as a serviceSpec, for the checks both share (production,
// database logins, the migrate step).
func (w webSpec) service() serviceSpec {
	return serviceSpec{name: w.name, http: w.http, required: w.required}
}

// addrEnv is w's listen address variable (CONSOLE_ADDR).
func (w webSpec) addrEnv() string { return w.service().envPrefix() + "ADDR" }

// publicKeyFile is the file name of w's public key in the services'
// AID_AUTH_PUBLIC_KEYS (Kubernetes: a key of the mounted Secret).
func (w webSpec) publicKeyFile() string { return w.name + ".pub.pem" }

// composeTokenSecret and composePublicKeySecret are w's Compose secrets.
func (w webSpec) composeTokenSecret() string {
	return strings.ReplaceAll(w.name, "-", "_") + "_token_key"
}
func (w webSpec) composePublicKeySecret() string {
	return strings.ReplaceAll(w.name, "-", "_") + "_public_key"
}

func webServices(web []webSpec) []serviceSpec {
	out := make([]serviceSpec, 0, len(web))
	for _, w := range web {
		out = append(out, w.service())
	}
	return out
}

// checkRefused reports a setting at a value production refuses.
func checkRefused(p *problems, where string, w webSpec, value func(name string) (string, bool)) {
	for name, bad := range w.refused {
		if got, ok := value(name); ok && strings.EqualFold(got, bad) {
			p.addf(where, "%s is %q, which production refuses", name, got)
		}
	}
}

// checkSidecarProbe requires a sidecar's probe to be an httpGet on
// wantPath at a port the sidecar itself declares.
func checkSidecarProbe(p *problems, where, field string, pr *probe, wantPath string, c container) {
	if pr == nil || pr.HTTPGet == nil {
		p.addf(where, "%s: want an httpGet probe on %s", field, wantPath)
		return
	}
	if pr.HTTPGet.Path != wantPath {
		p.addf(where, "%s path is %q, want %q", field, pr.HTTPGet.Path, wantPath)
	}
	if port, ok := c.resolvePort(pr.HTTPGet.Port); !ok || !c.declares(port) {
		p.addf(where, "%s port %q is not a port the container declares", field, pr.HTTPGet.Port.Value)
	}
}

// mountedSecretFile returns the Secret and key that the file at file comes
// from in c (a Secret volume mounted at the file's folder), if any.
func mountedSecretFile(d deployment, c container, file string) (secret, key string, ok bool) {
	dir, base := path.Split(file)
	dir = strings.TrimSuffix(dir, "/")
	for _, m := range c.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") != dir {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName, base, true
			}
		}
	}
	return "", "", false
}

// mountsSecret reports whether c mounts a volume of Secret name.
func mountsSecret(d deployment, c container, name string) bool {
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == name {
				return true
			}
		}
	}
	return false
}

// checkWebEnv checks a web front end's Deployment: production and its own
// settings, the variables it needs (its secrets from Secrets), no NATS and
// none of the services' keys, its listen address, its signing key from a
// Secret that no other container or Deployment mounts, and an entry point
// that exists: a sidecar's port on the pod's loopback or a Service port.
func checkWebEnv(p *problems, d deployment, w webSpec, all []deployment, configMaps, secrets map[string]map[string]string, services map[string]serviceObjectSpec) {
	where := d.String()
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		return
	}
	c := pod.Containers[0]
	literal, fromSecret := c.environment(configMaps)
	value := func(name string) (string, bool) {
		v, ok := literal[name]
		return v, ok || fromSecret[name]
	}
	checkProduction(p, where, w.service(), true, value)
	checkRefused(p, where, w, value)
	for _, name := range webRequiredEnv {
		if _, ok := value(name); !ok {
			p.addf(where, "environment variable %s is not set", name)
		}
	}
	for _, name := range w.secrets {
		if !fromSecret[name] {
			p.addf(where, "%s must come from a Secret (valueFrom.secretKeyRef)", name)
		}
	}
	checkKeys(p, where, w.service(), func(name string) bool { _, ok := value(name); return ok }, nil)
	if c.secretKey("AID_NATS_NKEY_SEED") != "" {
		p.addf(where, "holds a NATS identity (AID_NATS_NKEY_SEED): %s does not use NATS", w.name)
	}
	port, _ := c.port("http")
	checkListenAddr(p, where, w.addrEnv(), literal[w.addrEnv()], port)

	if file := literal[webTokenKeyEnv]; file != "" {
		secret, key, ok := mountedSecretFile(d, c, file)
		switch {
		case !ok:
			p.addf(where, "%s=%s is not in a Secret volume mounted by the container", webTokenKeyEnv, file)
		default:
			if _, has := secrets[secret][key]; !has {
				p.addf(where, "%s=%s: Secret %s has no key %q", webTokenKeyEnv, file, secret, key)
			}
			for _, other := range pod.Containers[1:] {
				if mountsSecret(d, other, secret) {
					p.addf(where, "container %q also mounts %s, the signing key's Secret: it is the %s's alone", other.Name, secret, w.name)
				}
			}
			for _, o := range all {
				if o.Metadata.Name == d.Metadata.Name {
					continue
				}
				for _, oc := range append(slices.Clone(o.Spec.Template.Spec.Containers), o.Spec.Template.Spec.InitContainers...) {
					if mountsSecret(o, oc, secret) {
						p.addf(where, "Deployment %s also mounts %s, the signing key's Secret: whoever holds it can speak for any user", o.Metadata.Name, secret)
					}
				}
			}
		}
	} else if fromSecret[webTokenKeyEnv] {
		p.addf(where, "%s names a file: mount the key from a Secret volume, not the key itself in the environment", webTokenKeyEnv)
	}

	if addr := literal[webAPIGRPCEnv]; addr != "" {
		host, portText, err := net.SplitHostPort(addr)
		target, _ := strconv.Atoi(portText)
		switch ip := net.ParseIP(host); {
		case err != nil:
			p.addf(where, "%s=%q: %v", webAPIGRPCEnv, addr, err)
		case host == "localhost" || (ip != nil && ip.IsLoopback()):
			served := slices.ContainsFunc(pod.Containers[1:], func(s container) bool { return s.declares(target) })
			if !served {
				p.addf(where, "%s=%q is on the pod's loopback, but no other container of the pod declares port %d", webAPIGRPCEnv, addr, target)
			}
		default:
			name, _, _ := strings.Cut(host, ".")
			s, ok := services[name]
			if !ok || !slices.ContainsFunc(s.Spec.Ports, func(sp servicePort) bool { return sp.Port == target }) {
				p.addf(where, "%s=%q names no Service port of the namespace", webAPIGRPCEnv, addr)
			}
		}
	}
}

// checkTrustsWebKey requires service d to trust w's call tokens: its
// AID_AUTH_PUBLIC_KEYS lists w's public key file, mounted from a Secret
// that has it.
func checkTrustsWebKey(p *problems, d deployment, w webSpec, configMaps, secrets map[string]map[string]string) {
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return
	}
	c := d.Spec.Template.Spec.Containers[0]
	literal, _ := c.environment(configMaps)
	var file string
	for f := range strings.SplitSeq(literal["AID_AUTH_PUBLIC_KEYS"], ",") {
		if f = strings.TrimSpace(f); path.Base(f) == w.publicKeyFile() {
			file = f
		}
	}
	if file == "" {
		p.addf(d.String(), "AID_AUTH_PUBLIC_KEYS %q does not list %s: the %s's calls would be refused", literal["AID_AUTH_PUBLIC_KEYS"], w.publicKeyFile(), w.name)
		return
	}
	secret, key, ok := mountedSecretFile(d, c, file)
	if !ok {
		p.addf(d.String(), "AID_AUTH_PUBLIC_KEYS lists %s, which no Secret volume of the container holds", file)
		return
	}
	if _, has := secrets[secret][key]; !has {
		p.addf(d.String(), "AID_AUTH_PUBLIC_KEYS lists %s, but Secret %s has no key %q", file, secret, key)
	}
}

// checkComposeTrustsWebKey requires Compose service name to list and mount
// w's public key secret.
func checkComposeTrustsWebKey(p *problems, c *composeFile, name string, w webSpec) {
	where := "compose.yaml service " + name
	svc := c.Services[name]
	env, _ := svc.environment()
	want := "/run/secrets/" + w.composePublicKeySecret()
	if !slices.Contains(strings.Split(env["AID_AUTH_PUBLIC_KEYS"], ","), want) {
		p.addf(where, "AID_AUTH_PUBLIC_KEYS %q does not list %s: the %s's calls would be refused", env["AID_AUTH_PUBLIC_KEYS"], want, w.name)
	}
	if !slices.Contains(svc.secretNames(), w.composePublicKeySecret()) {
		p.addf(where, "does not mount the secret %s (the %s's public key)", w.composePublicKeySecret(), w.name)
	}
}

// checkComposeWeb checks a web front end in Compose: its image, production
// and its own settings, its variables, its listen address and healthcheck,
// its own database role after its migrate step, no NATS and no service
// keys, its signing key a secret no other service mounts, and an entry
// point that is a service it depends on.
func checkComposeWeb(p *problems, c *composeFile, w webSpec, deps map[string]map[string]string) {
	where := "compose.yaml service " + w.name
	svc, ok := c.Services[w.name]
	if !ok {
		p.addf("compose.yaml", "no service %s", w.name)
		return
	}
	if svc.Build != nil && svc.Build.Args["SERVICE"] != w.name {
		p.addf(where, "build arg SERVICE is %q, want %q", svc.Build.Args["SERVICE"], w.name)
	}
	env, _ := svc.environment()
	value := func(name string) (string, bool) { v, ok := env[name]; return interpolate(v), ok }
	checkProduction(p, where, w.service(), true, value)
	checkRefused(p, where, w, value)
	for _, name := range webRequiredEnv {
		if _, ok := env[name]; !ok {
			p.addf(where, "environment variable %s is not set", name)
		}
	}
	checkKeys(p, where, w.service(), func(name string) bool { _, ok := env[name]; return ok }, nil)
	if got := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; got != "http://jaeger:4317" {
		p.addf(where, "OTEL_EXPORTER_OTLP_ENDPOINT is %q, want http://jaeger:4317", got)
	}
	checkListenAddr(p, where, w.addrEnv(), env[w.addrEnv()], w.http)
	if test := svc.healthcheckTest(); !strings.Contains(test, ":"+strconv.Itoa(w.http)+"/readyz") {
		p.addf(where, "healthcheck %q does not probe /readyz on port %d", test, w.http)
	}
	if deps[w.name]["postgres"] != "service_healthy" {
		p.addf(where, "must depend on postgres with condition service_healthy")
	}
	checkComposeDatabaseLogins(p, c, w.service(), deps[w.name])
	for _, name := range []string{"NATS_URL", "AID_NATS_NKEY_SEED", "AID_NATS_NKEY_SEED_FILE"} {
		if _, ok := env[name]; ok {
			p.addf(where, "sets %s: %s does not use NATS", name, w.name)
		}
	}
	for _, sec := range svc.secretNames() {
		if strings.HasPrefix(sec, "nats_seed_") {
			p.addf(where, "mounts %s, a NATS identity: %s does not use NATS", sec, w.name)
		}
	}
	secret := w.composeTokenSecret()
	if got, want := env[webTokenKeyEnv], "/run/secrets/"+secret; got != want {
		p.addf(where, "%s is %q, want %s: its own signing key, mounted as a secret", webTokenKeyEnv, got, want)
	}
	if !slices.Contains(svc.secretNames(), secret) {
		p.addf(where, "does not mount the secret %s (its signing key)", secret)
	}
	for name, other := range c.Services {
		if name != w.name && slices.Contains(other.secretNames(), secret) {
			p.addf(where, "service %s also mounts %s, the signing key: whoever holds it can speak for any user", name, secret)
		}
	}
	if addr := interpolate(env[webAPIGRPCEnv]); addr != "" {
		host, _, err := net.SplitHostPort(addr)
		switch _, isService := c.Services[host]; {
		case err != nil:
			p.addf(where, "%s=%q: %v", webAPIGRPCEnv, addr, err)
		case !isService:
			p.addf(where, "%s=%q names no service of the stack", webAPIGRPCEnv, addr)
		default:
			if _, ok := deps[w.name][host]; !ok {
				p.addf(where, "%s points at %s, which is not in depends_on", webAPIGRPCEnv, host)
			}
		}
	}
}
