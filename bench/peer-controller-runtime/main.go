// peer-controller-runtime: jockey's admission webhook written the way most Kubernetes webhooks
// are, with sigs.k8s.io/controller-runtime's webhook/admission package, as the benchmark's
// peer. It applies the same defaults to a labelled Deployment, Service and Ingress (the bench
// checks that its answers produce the same objects as jockey's) and the same host-uniqueness
// check over an informer cache of labelled Ingresses (indexed by host).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const (
	labelProject   = "jockey.agentops.ai/project"
	annInstance    = "jockey.agentops.ai/instance"
	labelHash      = "jockey.agentops.ai/content-hash"
	domain         = "deploy.agentops.ai"
	sharedGroup    = "alb-deployments"
	repoPrefix     = "hosting"
	placeholder    = "jockey:auto"
	hostIndexField = "spec.rules.host"
)

var registry = "registry.local:5000"

func setIfAbsent(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func routing(labelsMap map[string]string, project, hash string) {
	setIfAbsent(labelsMap, labelProject, project)
	setIfAbsent(labelsMap, "deployment", project)
	setIfAbsent(labelsMap, "hostname", project+"."+domain)
	if hash != "" {
		labelsMap[labelHash] = hash
	}
}

func probe(initial, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
		InitialDelaySeconds: initial, PeriodSeconds: period, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: failures,
	}
}

func defaultDeployment(d *appsv1.Deployment) error {
	project := d.Labels[labelProject]
	cm := d.Annotations[annInstance]
	hash := strings.TrimPrefix(cm, "instance-")
	if cm != "" && (len(hash) != 16 || hash == cm) {
		return fmt.Errorf("Deployment %s/%s: annotation %s is %q, not the name of an instance ConfigMap", d.Namespace, d.Name, annInstance, cm)
	}
	routing(d.Labels, project, hash)
	app := map[string]string{"app": project}
	if len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0 {
		d.Spec.Selector.MatchLabels = app
	}
	if d.Spec.Template.Labels == nil {
		d.Spec.Template.Labels = map[string]string{}
	}
	setIfAbsent(d.Spec.Template.Labels, "app", project)
	routing(d.Spec.Template.Labels, project, hash)
	pod := &d.Spec.Template.Spec
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if c.Image != "" && c.Image != placeholder && !strings.HasPrefix(c.Image, registry+"/"+repoPrefix+"/"+project+":") {
			continue
		}
		if c.Image == "" || c.Image == placeholder {
			if hash == "" {
				return fmt.Errorf("Deployment %s/%s container %q: the image is %q but annotation %s is missing", d.Namespace, d.Name, c.Name, c.Image, annInstance)
			}
			c.Image = registry + "/" + repoPrefix + "/" + project + ":" + hash
		}
		// The project's secret environment (Secret env-PROJECT), optional, as jockey writes it.
		secretName := "env-" + project
		hasSecret := false
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == secretName {
				hasSecret = true
			}
		}
		if !hasSecret {
			optional := true
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Optional: &optional}})
		}
		found := false
		for _, p := range c.Ports {
			if p.ContainerPort == 8080 {
				found = true
			}
		}
		if !found {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 8080, Name: "http", Protocol: corev1.ProtocolTCP})
		}
		if c.ReadinessProbe == nil {
			c.ReadinessProbe = probe(0, 1, 10)
		}
		if c.LivenessProbe == nil {
			c.LivenessProbe = probe(15, 10, 6)
		}
		if c.Lifecycle == nil {
			c.Lifecycle = &corev1.Lifecycle{}
		}
		if c.Lifecycle.PreStop == nil {
			c.Lifecycle.PreStop = &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 35}}
		}
		for _, r := range []struct {
			list  *corev1.ResourceList
			name  corev1.ResourceName
			value string
		}{{&c.Resources.Requests, "cpu", "100m"}, {&c.Resources.Requests, "memory", "256Mi"}, {&c.Resources.Limits, "cpu", "1"}, {&c.Resources.Limits, "memory", "1Gi"}} {
			if *r.list == nil {
				*r.list = corev1.ResourceList{}
			}
			if _, ok := (*r.list)[r.name]; !ok {
				(*r.list)[r.name] = resourceMust(r.value)
			}
		}
		if cm != "" {
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.Name == "jockey-instance" || strings.TrimSuffix(m.MountPath, "/") == "/app/instance" {
					mounted = true
				}
			}
			if !mounted {
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "jockey-instance", MountPath: "/app/instance", ReadOnly: true})
			}
		}
	}
	if cm != "" {
		has := false
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == "jockey-instance" {
				has = true
				if pod.Volumes[i].ConfigMap != nil {
					pod.Volumes[i].ConfigMap.Name = cm
				}
			}
		}
		if !has {
			mode := int32(0o644)
			pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "jockey-instance", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}, DefaultMode: &mode}}})
		}
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 60 {
		g := int64(60)
		pod.TerminationGracePeriodSeconds = &g
	}
	return nil
}

func defaultService(s *corev1.Service) {
	project := s.Labels[labelProject]
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	tags := s.Annotations["alb.ingress.kubernetes.io/tags"]
	if !strings.Contains(tags, "deployment=") {
		add := "deployment=" + project + ",hostname=" + project + "." + domain
		if tags == "" {
			s.Annotations["alb.ingress.kubernetes.io/tags"] = add
		} else {
			s.Annotations["alb.ingress.kubernetes.io/tags"] = strings.TrimSuffix(tags, ",") + "," + add
		}
	}
	if s.Spec.Type == "" {
		s.Spec.Type = corev1.ServiceTypeClusterIP
	}
	if len(s.Spec.Ports) == 0 {
		s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}
	}
	if len(s.Spec.Selector) == 0 {
		s.Spec.Selector = map[string]string{"app": project}
	}
}

var albDefaults = [][2]string{
	{"alb.ingress.kubernetes.io/scheme", "internet-facing"},
	{"alb.ingress.kubernetes.io/target-type", "ip"},
	{"alb.ingress.kubernetes.io/listen-ports", `[{"HTTP": 80}, {"HTTPS": 443}]`},
	{"alb.ingress.kubernetes.io/ssl-redirect", "443"},
	{"alb.ingress.kubernetes.io/healthcheck-path", "/health"},
	{"alb.ingress.kubernetes.io/success-codes", "200"},
	{"alb.ingress.kubernetes.io/target-group-attributes", "deregistration_delay.timeout_seconds=30"},
}

func defaultIngress(ing *networkingv1.Ingress) {
	project := ing.Labels[labelProject]
	if ing.Annotations == nil {
		ing.Annotations = map[string]string{}
	}
	_, legacy := ing.Annotations["kubernetes.io/ingress.class"]
	for _, kv := range albDefaults {
		setIfAbsent(ing.Annotations, kv[0], kv[1])
	}
	setIfAbsent(ing.Annotations, "alb.ingress.kubernetes.io/group.name", sharedGroup)
	if ing.Spec.IngressClassName == nil && !legacy {
		class := "alb"
		ing.Spec.IngressClassName = &class
	}
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		prefix := networkingv1.PathTypePrefix
		ing.Spec.Rules = []networkingv1.IngressRule{{Host: project + "." + domain, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "svc-" + project,
					Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}
	}
}

type mutator struct{ decoder admission.Decoder }

func (m *mutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	var obj runtime.Object
	switch req.Kind.Kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "Service":
		obj = &corev1.Service{}
	case "Ingress":
		obj = &networkingv1.Ingress{}
	default:
		return admission.Allowed("")
	}
	if err := m.decoder.Decode(req, obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	meta := obj.(client.Object)
	if _, ok := meta.GetLabels()[labelProject]; !ok {
		return admission.Allowed("")
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if err := defaultDeployment(o); err != nil {
			return admission.Denied(err.Error())
		}
	case *corev1.Service:
		defaultService(o)
	case *networkingv1.Ingress:
		defaultIngress(o)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}

type validator struct {
	decoder admission.Decoder
	cache   client.Reader
}

func (v *validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind != "Ingress" {
		return admission.Allowed("")
	}
	ing := &networkingv1.Ingress{}
	if err := v.decoder.Decode(req, ing); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	project, ok := ing.Labels[labelProject]
	if !ok {
		return admission.Allowed("")
	}
	hosts := map[string]bool{}
	for _, r := range ing.Spec.Rules {
		if r.Host != "" {
			hosts[r.Host] = true
		}
	}
	if len(ing.Spec.Rules) == 0 {
		hosts[project+"."+domain] = true
	}
	for h := range hosts {
		var list networkingv1.IngressList
		if err := v.cache.List(ctx, &list, client.MatchingFields{hostIndexField: h}); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		for _, other := range list.Items {
			if other.Namespace == req.Namespace && other.Name == req.Name {
				continue
			}
			if other.Labels[labelProject] != project || other.Namespace != req.Namespace {
				return admission.Denied(fmt.Sprintf("Ingress %s/%s: host %q already belongs to project %s (Ingress %s/%s)",
					req.Namespace, req.Name, h, other.Labels[labelProject], other.Namespace, other.Name))
			}
		}
	}
	return admission.Allowed("")
}

func resourceMust(s string) (q resourceQuantity) { return parseQuantity(s) }

func main() {
	// --kubeconfig is controller-runtime's own flag (pkg/client/config).
	certDir := flag.String("cert-dir", "", "directory holding tls.crt and tls.key")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 9444, "port to listen on")
	flag.StringVar(&registry, "image-registry", registry, "registry of builder images")
	flag.Parse()

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer-controller-runtime:", err)
		os.Exit(1)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	selector, _ := labels.Parse(labelProject)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&networkingv1.Ingress{}: {Label: selector},
		}},
		WebhookServer: webhook.NewServer(webhook.Options{Host: *host, Port: *port, CertDir: *certDir}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer-controller-runtime:", err)
		os.Exit(1)
	}
	err = mgr.GetFieldIndexer().IndexField(context.Background(), &networkingv1.Ingress{}, hostIndexField, func(o client.Object) []string {
		ing := o.(*networkingv1.Ingress)
		var hs []string
		for _, r := range ing.Spec.Rules {
			if r.Host != "" {
				hs = append(hs, r.Host)
			}
		}
		return hs
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer-controller-runtime:", err)
		os.Exit(1)
	}
	decoder := admission.NewDecoder(scheme)
	srv := mgr.GetWebhookServer()
	srv.Register("/mutate", &webhook.Admission{Handler: &mutator{decoder: decoder}})
	srv.Register("/validate", &webhook.Admission{Handler: &validator{decoder: decoder, cache: mgr.GetCache()}})
	// Answer only once the Ingress cache has synced, like jockey's readiness.
	if _, err := mgr.GetCache().GetInformer(context.Background(), &networkingv1.Ingress{}); err != nil {
		fmt.Fprintln(os.Stderr, "peer-controller-runtime:", err)
		os.Exit(1)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, "peer-controller-runtime:", err)
		os.Exit(1)
	}
}
