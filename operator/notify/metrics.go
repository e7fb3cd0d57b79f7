package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Delivery metrics, on the manager's /metrics: what a person watches to see
// that messages leave, and that a stuck receiver makes the queue drop.
var (
	queueLength = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "helmflux_notify_queue_length", Help: "Messages waiting to be delivered to Alerts.",
	})
	droppedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "helmflux_notify_dropped_total", Help: "Messages dropped, oldest first, because the queue was full.",
	})
	deliveredTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "helmflux_notify_delivered_total", Help: "Messages delivered to an Alert's receiver.",
	})
	failedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "helmflux_notify_failed_total", Help: "Messages given up on after every attempt.",
	})
)

func init() {
	metrics.Registry.MustRegister(queueLength, droppedTotal, deliveredTotal, failedTotal)
}
