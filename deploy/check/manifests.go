package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest.
type object struct {
	kind   string
	source string // the template that produced it (helm's "# Source:" line)
	meta   metav1.Object
	obj    runtime.Object
}

func (o object) String() string {
	s := o.kind + " " + o.meta.GetName()
	if o.source != "" {
		s += " (" + o.source + ")"
	}
	return s
}

// key identifies an object: two objects with one key would overwrite each other.
func (o object) key() string {
	return o.kind + "/" + o.meta.GetNamespace() + "/" + o.meta.GetName()
}

// newDecoder decodes YAML or JSON into the registered types and reports
// unknown fields, duplicate fields and wrong types as errors.
func newDecoder() (runtime.Decoder, error) {
	scheme := runtime.NewScheme()
	adders := []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme,
		schedulingv1.AddToScheme, rbacv1.AddToScheme, monitoringv1.AddToScheme,
	}
	for _, add := range adders {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(), nil
}

var sourceComment = regexp.MustCompile(`(?m)^# Source: (\S+)`)

// checkManifests decodes every document of a multi-document YAML stream
// strictly, then checks the objects one by one and against each other.
func checkManifests(_ string, data []byte) (string, []error) {
	decoder, err := newDecoder()
	if err != nil {
		return "", []error{err}
	}
	var (
		objects  []object
		problems []error
	)
	reader := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("document %d: %w", i, err))
			break
		}
		source := ""
		if m := sourceComment.FindSubmatch(doc); m != nil {
			source = string(m[1])
		}
		var probe any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			problems = append(problems, fmt.Errorf("document %d %s: not YAML: %w", i, source, err))
			continue
		}
		if probe == nil {
			continue // only comments or blank
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			problems = append(problems, fmt.Errorf("document %d %s: %w", i, source, err))
			continue
		}
		meta, err := metaOf(obj)
		if err != nil {
			problems = append(problems, fmt.Errorf("document %d %s: %w", i, source, err))
			continue
		}
		objects = append(objects, object{kind: gvk.Kind, source: source, meta: meta, obj: obj})
	}
	if len(objects) == 0 && len(problems) == 0 {
		problems = append(problems, errors.New("no Kubernetes objects"))
	}

	if len(problems) > 0 {
		// Checks across objects would only echo the documents that failed.
		return fmt.Sprintf("%d objects decoded", len(objects)), problems
	}
	set := newObjectSet(objects)
	for _, o := range objects {
		for _, p := range set.check(o) {
			problems = append(problems, fmt.Errorf("%s: %w", o, p))
		}
	}
	problems = append(problems, set.checkUnique()...)
	return set.summary(), problems
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	accessor, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return accessor, nil
}

// objectSet holds every decoded object, for checks across objects.
type objectSet struct {
	all         []object
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  map[string]bool
}

func newObjectSet(objects []object) *objectSet {
	s := &objectSet{all: objects, configMaps: map[string]bool{}}
	for _, o := range objects {
		switch t := o.obj.(type) {
		case *appsv1.Deployment:
			s.deployments = append(s.deployments, t)
		case *corev1.Service:
			s.services = append(s.services, t)
		case *corev1.ConfigMap:
			s.configMaps[t.Name] = true
		}
	}
	return s
}

func (s *objectSet) summary() string {
	counts := map[string]int{}
	for _, o := range s.all {
		counts[o.kind]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return fmt.Sprintf("%d objects: %s", len(s.all), strings.Join(parts, ", "))
}

func (s *objectSet) checkUnique() []error {
	var problems []error
	seen := map[string]bool{}
	for _, o := range s.all {
		if seen[o.key()] {
			problems = append(problems, fmt.Errorf("%s: defined twice", o))
		}
		seen[o.key()] = true
	}
	return problems
}

// check runs the checks of one object.
func (s *objectSet) check(o object) []error {
	problems := checkMeta(o)
	switch t := o.obj.(type) {
	case *appsv1.Deployment:
		problems = append(problems, s.checkDeployment(t)...)
	case *batchv1.Job:
		problems = append(problems, checkPodSpec(t.Spec.Template.Spec, false)...)
		problems = append(problems, checkLabels(t.Spec.Template.Labels)...)
	case *corev1.Service:
		problems = append(problems, s.checkService(t)...)
	case *policyv1.PodDisruptionBudget:
		problems = append(problems, s.checkPDB(t)...)
	case *autoscalingv2.HorizontalPodAutoscaler:
		problems = append(problems, s.checkHPA(t)...)
	case *networkingv1.Ingress:
		problems = append(problems, s.checkIngress(t)...)
	case *corev1.ConfigMap:
		problems = append(problems, checkConfigMap(t)...)
	case *corev1.Secret:
		problems = append(problems, s.checkSecret(t)...)
	case *monitoringv1.ServiceMonitor:
		problems = append(problems, s.checkServiceMonitor(t)...)
	case *monitoringv1.PrometheusRule:
		_, errs := checkRuleGroups(t.Spec.Groups)
		problems = append(problems, errs...)
	}
	return problems
}

func checkMeta(o object) []error {
	var problems []error
	name := o.meta.GetName()
	if name == "" {
		return []error{errors.New("metadata.name is empty")}
	}
	validate := validation.IsDNS1123Subdomain
	if o.kind == "Service" {
		validate = validation.IsDNS1035Label
	}
	for _, msg := range validate(name) {
		problems = append(problems, fmt.Errorf("metadata.name %q: %s", name, msg))
	}
	problems = append(problems, checkLabels(o.meta.GetLabels())...)
	return problems
}

func checkLabels(l map[string]string) []error {
	var problems []error
	for _, k := range sortedKeys(l) {
		for _, msg := range validation.IsQualifiedName(k) {
			problems = append(problems, fmt.Errorf("label key %q: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(l[k]) {
			problems = append(problems, fmt.Errorf("label %s=%q: %s", k, l[k], msg))
		}
	}
	return problems
}

// Roles that hold SMPP sessions: they drain on SIGTERM within 30 s and must
// not be evicted to pack nodes.
var sessionRoles = []string{"connector", "smpp"}

const componentLabel = "app.kubernetes.io/component"

func (s *objectSet) checkDeployment(d *appsv1.Deployment) []error {
	var problems []error
	tmpl := d.Spec.Template
	problems = append(problems, checkLabels(tmpl.Labels)...)
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
		problems = append(problems, errors.New("spec.selector is empty"))
	} else if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		problems = append(problems, fmt.Errorf("spec.selector: %w", err))
	} else if !sel.Matches(labels.Set(tmpl.Labels)) {
		problems = append(problems, fmt.Errorf("spec.selector %s does not match the pod template's labels", sel))
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType && d.Spec.Strategy.RollingUpdate != nil {
		problems = append(problems, errors.New("strategy Recreate with rollingUpdate set: the API server refuses it"))
	}
	problems = append(problems, checkPodSpec(tmpl.Spec, true)...)
	for _, v := range tmpl.Spec.Volumes {
		if v.ConfigMap != nil && v.Name == "config" && !s.configMaps[v.ConfigMap.Name] {
			problems = append(problems, fmt.Errorf("volume config: ConfigMap %q is not in the release", v.ConfigMap.Name))
		}
	}

	role := tmpl.Labels[componentLabel]
	if !slices.Contains(sessionRoles, role) {
		return problems
	}
	if g := tmpl.Spec.TerminationGracePeriodSeconds; g == nil || *g < 45 {
		problems = append(problems, fmt.Errorf("role %s: terminationGracePeriodSeconds must leave room for a 30 s drain (at least 45)", role))
	}
	if tmpl.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] != "false" {
		problems = append(problems, fmt.Errorf("role %s: pod template lacks cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\"", role))
	}
	if role == "connector" {
		ru := d.Spec.Strategy.RollingUpdate
		if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
			return problems
		}
		if ru == nil || ru.MaxSurge == nil || ru.MaxSurge.String() != "0" {
			problems = append(problems, errors.New("role connector: rolling updates must not surge (maxSurge: 0), or binds exceed the carrier's limit"))
		}
	}
	return problems
}

// checkPodSpec checks what every pod of the gateway must have. long is true
// for long-running pods, which also need probes.
func checkPodSpec(spec corev1.PodSpec, long bool) []error {
	var problems []error
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		problems = append(problems, errors.New("securityContext.runAsNonRoot is not true"))
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			problems = append(problems, fmt.Errorf("volume %q defined twice", v.Name))
		}
		volumes[v.Name] = true
	}
	if len(spec.Containers) == 0 {
		problems = append(problems, errors.New("no containers"))
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, p := range checkContainer(c, volumes, long) {
			problems = append(problems, fmt.Errorf("container %s: %w", c.Name, p))
		}
	}
	return problems
}

func checkContainer(c corev1.Container, volumes map[string]bool, long bool) []error {
	var problems []error
	if c.Image == "" {
		problems = append(problems, errors.New("no image"))
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		problems = append(problems, errors.New("no securityContext"))
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			problems = append(problems, errors.New("securityContext.readOnlyRootFilesystem is not true"))
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			problems = append(problems, errors.New("securityContext.allowPrivilegeEscalation is not false"))
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) {
			problems = append(problems, errors.New("securityContext.capabilities.drop lacks ALL"))
		}
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		problems = append(problems, errors.New("no cpu request"))
	}
	if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
		problems = append(problems, errors.New("no memory request"))
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		problems = append(problems, errors.New("no memory limit"))
	}

	ports := map[string]bool{}
	for _, p := range c.Ports {
		if p.Name == "" {
			continue
		}
		for _, msg := range validation.IsValidPortName(p.Name) {
			problems = append(problems, fmt.Errorf("port name %q: %s", p.Name, msg))
		}
		if ports[p.Name] {
			problems = append(problems, fmt.Errorf("port name %q used twice", p.Name))
		}
		ports[p.Name] = true
	}
	envs := map[string]bool{}
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			problems = append(problems, fmt.Errorf("env %q: %s", e.Name, msg))
		}
		if envs[e.Name] {
			problems = append(problems, fmt.Errorf("env %q set twice", e.Name))
		}
		envs[e.Name] = true
	}
	paths := map[string]bool{}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			problems = append(problems, fmt.Errorf("volumeMount %q names no volume", m.Name))
		}
		if paths[m.MountPath] {
			problems = append(problems, fmt.Errorf("two volumes mounted at %s", m.MountPath))
		}
		paths[m.MountPath] = true
	}

	probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe}
	if long {
		for _, name := range []string{"livenessProbe", "readinessProbe"} {
			if probes[name] == nil {
				problems = append(problems, fmt.Errorf("no %s", name))
			}
		}
	}
	for _, name := range sortedProbeNames(probes) {
		p := probes[name]
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if port := p.HTTPGet.Port; port.Type == intstr.String && !ports[port.StrVal] {
			problems = append(problems, fmt.Errorf("%s uses port %q, which the container does not name", name, port.StrVal))
		}
	}
	return problems
}

func sortedProbeNames(m map[string]*corev1.Probe) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// podsMatching returns the Deployments in the namespace whose pod template
// the selector selects.
func (s *objectSet) podsMatching(namespace string, sel labels.Selector) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range s.deployments {
		if d.Namespace == namespace && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func (s *objectSet) checkService(svc *corev1.Service) []error {
	var problems []error
	if len(svc.Spec.Selector) == 0 {
		return nil // endpoints managed elsewhere
	}
	targets := s.podsMatching(svc.Namespace, labels.SelectorFromSet(svc.Spec.Selector))
	if len(targets) == 0 {
		return []error{fmt.Errorf("selector %v selects no pod of the release", svc.Spec.Selector)}
	}
	for _, p := range svc.Spec.Ports {
		for _, d := range targets {
			if !containerHasPort(d.Spec.Template.Spec, p.TargetPort, p.Port) {
				problems = append(problems, fmt.Errorf("port %s: target port %s is not a container port of Deployment %s", p.Name, p.TargetPort.String(), d.Name))
			}
		}
	}
	return problems
}

// containerHasPort reports whether a container of the pod exposes the
// target port (a name, a number, or unset meaning the service port).
func containerHasPort(spec corev1.PodSpec, target intstr.IntOrString, servicePort int32) bool {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			switch {
			case target.Type == intstr.String && target.StrVal != "":
				if cp.Name == target.StrVal {
					return true
				}
			case target.Type == intstr.Int && target.IntVal != 0:
				if cp.ContainerPort == target.IntVal {
					return true
				}
			default:
				if cp.ContainerPort == servicePort {
					return true
				}
			}
		}
	}
	return false
}

func (s *objectSet) checkPDB(pdb *policyv1.PodDisruptionBudget) []error {
	var problems []error
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil {
		problems = append(problems, errors.New("both minAvailable and maxUnavailable are set"))
	}
	if pdb.Spec.Selector == nil {
		return append(problems, errors.New("no selector"))
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return append(problems, fmt.Errorf("selector: %w", err))
	}
	switch n := len(s.podsMatching(pdb.Namespace, sel)); n {
	case 0:
		problems = append(problems, fmt.Errorf("selector %s selects no pod of the release", sel))
	case 1:
	default:
		problems = append(problems, fmt.Errorf("selector %s selects the pods of %d Deployments", sel, n))
	}
	return problems
}

func (s *objectSet) checkHPA(hpa *autoscalingv2.HorizontalPodAutoscaler) []error {
	var problems []error
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" {
		problems = append(problems, fmt.Errorf("scaleTargetRef.kind is %q, want Deployment", ref.Kind))
	}
	var target *appsv1.Deployment
	for _, d := range s.deployments {
		if d.Namespace == hpa.Namespace && d.Name == ref.Name {
			target = d
		}
	}
	switch {
	case target == nil:
		problems = append(problems, fmt.Errorf("scaleTargetRef names Deployment %q, which is not in the release", ref.Name))
	case target.Spec.Replicas != nil:
		problems = append(problems, fmt.Errorf("Deployment %s sets replicas; every upgrade would reset what the HPA chose", ref.Name))
	}
	if hpa.Spec.MinReplicas != nil && *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		problems = append(problems, fmt.Errorf("minReplicas %d > maxReplicas %d", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas))
	}
	if len(hpa.Spec.Metrics) == 0 {
		problems = append(problems, errors.New("no metrics"))
	}
	return problems
}

func (s *objectSet) checkIngress(ing *networkingv1.Ingress) []error {
	var problems []error
	if len(ing.Spec.Rules) == 0 {
		problems = append(problems, errors.New("no rules"))
	}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			problems = append(problems, fmt.Errorf("rule for host %q has no http paths", rule.Host))
			continue
		}
		for _, p := range rule.HTTP.Paths {
			b := p.Backend.Service
			if b == nil {
				problems = append(problems, fmt.Errorf("path %s has no service backend", p.Path))
				continue
			}
			if b.Port.Name == "use-annotation" {
				if _, ok := ing.Annotations["alb.ingress.kubernetes.io/actions."+b.Name]; !ok {
					problems = append(problems, fmt.Errorf("path %s uses ALB action %q, which no annotation defines", p.Path, b.Name))
				}
				continue
			}
			svc := s.service(ing.Namespace, b.Name)
			if svc == nil {
				problems = append(problems, fmt.Errorf("path %s: Service %q is not in the release", p.Path, b.Name))
				continue
			}
			if !serviceHasPort(svc, b.Port.Name, b.Port.Number) {
				problems = append(problems, fmt.Errorf("path %s: Service %s has no port %s%d", p.Path, b.Name, b.Port.Name, b.Port.Number))
			}
		}
	}
	return problems
}

func (s *objectSet) service(namespace, name string) *corev1.Service {
	for _, svc := range s.services {
		if svc.Namespace == namespace && svc.Name == name {
			return svc
		}
	}
	return nil
}

func serviceHasPort(svc *corev1.Service, name string, number int32) bool {
	for _, p := range svc.Spec.Ports {
		if (name != "" && p.Name == name) || (number != 0 && p.Port == number) {
			return true
		}
	}
	return false
}

func (s *objectSet) checkServiceMonitor(sm *monitoringv1.ServiceMonitor) []error {
	var problems []error
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		return []error{fmt.Errorf("selector: %w", err)}
	}
	var matched []*corev1.Service
	for _, svc := range s.services {
		if sel.Matches(labels.Set(svc.Labels)) {
			matched = append(matched, svc)
		}
	}
	if len(matched) == 0 {
		return []error{fmt.Errorf("selector %s selects no Service of the release", sel)}
	}
	if len(sm.Spec.Endpoints) == 0 {
		problems = append(problems, errors.New("no endpoints"))
	}
	for _, ep := range sm.Spec.Endpoints {
		if ep.Port == "" {
			continue
		}
		for _, svc := range matched {
			if !serviceHasPort(svc, ep.Port, 0) {
				problems = append(problems, fmt.Errorf("endpoint port %q: Service %s has no such port", ep.Port, svc.Name))
			}
		}
	}
	return problems
}

// secretKey matches configuration keys whose values are secrets.
var secretKey = regexp.MustCompile(`(?i)(password|passwd|secret|token|api_?key|private_?key)`)

// envName is a variable name config.yaml can refer to as ${NAME}.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envReference is the only form a secret may take in config.yaml.
var envReference = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

// checkConfigMap parses every YAML file in the ConfigMap and refuses secret
// values: a key that names a secret must hold ${NAME} (or nothing).
func checkConfigMap(cm *corev1.ConfigMap) []error {
	var problems []error
	for _, file := range sortedKeys(cm.Data) {
		if !strings.HasSuffix(file, ".yaml") && !strings.HasSuffix(file, ".yml") {
			continue
		}
		var doc any
		if err := yaml.Unmarshal([]byte(cm.Data[file]), &doc); err != nil {
			problems = append(problems, fmt.Errorf("data[%s]: not YAML: %w", file, err))
			continue
		}
		walkSecrets(doc, file, false, func(path, value string) {
			problems = append(problems, fmt.Errorf("data[%s]: %s holds a literal secret; write ${NAME} and put NAME in the Secret", file, path))
		})
	}
	return problems
}

// walkSecrets calls leak for every string under a secret-looking key that is
// not an environment reference.
func walkSecrets(node any, path string, underSecret bool, leak func(path, value string)) {
	switch n := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkSecrets(n[k], path+"."+k, underSecret || secretKey.MatchString(k), leak)
		}
	case []any:
		for i, v := range n {
			walkSecrets(v, fmt.Sprintf("%s[%d]", path, i), underSecret, leak)
		}
	case string:
		if underSecret && n != "" && !envReference.MatchString(n) {
			leak(path, n)
		}
	default:
		if underSecret && n != nil {
			leak(path, fmt.Sprint(n))
		}
	}
}

// checkSecret: a Secret that pods load with envFrom must have keys that are
// valid environment variable names.
func (s *objectSet) checkSecret(sec *corev1.Secret) []error {
	if !s.loadedAsEnv(sec.Namespace, sec.Name) {
		return nil
	}
	var problems []error
	keys := map[string]bool{}
	for k := range sec.Data {
		keys[k] = true
	}
	for k := range sec.StringData {
		keys[k] = true
	}
	for k := range keys {
		if !envName.MatchString(k) {
			problems = append(problems, fmt.Errorf("key %q is loaded as an environment variable that config.yaml cannot name as ${%s}: use letters, digits and _", k, k))
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	return problems
}

func (s *objectSet) loadedAsEnv(namespace, name string) bool {
	var specs []corev1.PodSpec
	for _, o := range s.all {
		if o.meta.GetNamespace() != namespace {
			continue
		}
		switch t := o.obj.(type) {
		case *appsv1.Deployment:
			specs = append(specs, t.Spec.Template.Spec)
		case *batchv1.Job:
			specs = append(specs, t.Spec.Template.Spec)
		}
	}
	for _, spec := range specs {
		for _, c := range spec.Containers {
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && ef.SecretRef.Name == name {
					return true
				}
			}
		}
	}
	return false
}
