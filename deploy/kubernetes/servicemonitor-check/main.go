// servicemonitor-check SERVICEMONITOR SERVICES: kubernetes-validate has schemas for Kubernetes'
// own kinds only, so deploy/check decodes the ServiceMonitor strictly into the Prometheus
// Operator's own Go type (an unknown or mistyped field fails), and checks that it selects the
// Service and scrapes a port the Service has.
package main

import (
	"bytes"
	"fmt"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: servicemonitor-check SERVICEMONITOR.yaml SERVICES.yaml")
	}
	var monitor monitoringv1.ServiceMonitor
	decode(os.Args[1], read(os.Args[1]), &monitor)
	if monitor.APIVersion != "monitoring.coreos.com/v1" || monitor.Kind != "ServiceMonitor" {
		fail("%s: %s %s is not a monitoring.coreos.com/v1 ServiceMonitor", os.Args[1], monitor.APIVersion, monitor.Kind)
	}
	selector := labels.SelectorFromSet(monitor.Spec.Selector.MatchLabels)
	matched := 0
	for _, doc := range bytes.Split(read(os.Args[2]), []byte("\n---\n")) {
		var service corev1.Service
		decode(os.Args[2], doc, &service)
		if !selector.Matches(labels.Set(service.Labels)) {
			continue
		}
		matched++
		for _, endpoint := range monitor.Spec.Endpoints {
			if !hasPort(service, endpoint.Port) {
				fail("%s: endpoint port %q is not a port of Service %s", os.Args[1], endpoint.Port, service.Name)
			}
		}
	}
	if matched == 0 {
		fail("%s: its selector matches no Service in %s", os.Args[1], os.Args[2])
	}
	fmt.Printf("ServiceMonitor %s: %d endpoint(s), selects %d Service(s)\n", monitor.Name, len(monitor.Spec.Endpoints), matched)
}

// hasPort: a headless Service may lack the metrics port; only Services with ClusterIPs are scraped.
func hasPort(service corev1.Service, name string) bool {
	if service.Spec.ClusterIP == corev1.ClusterIPNone {
		return true
	}
	for _, port := range service.Spec.Ports {
		if port.Name == name {
			return true
		}
	}
	return false
}

func read(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	return data
}

func decode(path string, data []byte, into any) {
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		fail("%s: %v", path, err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
