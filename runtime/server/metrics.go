package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, in a registry of its own so
// that several servers (tests) can live in one process.
type metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec   // endpoint, code
	requestSeconds   *prometheus.HistogramVec // endpoint
	rejected         *prometheus.CounterVec   // reason
	sequences        *prometheus.CounterVec   // finish reason
	promptTokens     prometheus.Counter
	cachedTokens     prometheus.Counter
	completionTokens prometheus.Counter
	embeddingTokens  prometheus.Counter
	queueDepth       prometheus.Gauge
	slotsBusy        prometheus.Gauge
	slotsTotal       prometheus.Gauge
	ttft             prometheus.Histogram
	interToken       prometheus.Histogram
	queueWait        prometheus.Histogram
	batchSize        prometheus.Histogram
	stepSeconds      prometheus.Histogram
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	latency := prometheus.ExponentialBuckets(0.001, 2, 16) // 1 ms … 33 s
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelc_http_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "modelc_http_request_duration_seconds", Help: "Time from request to the end of the response, by endpoint.", Buckets: latency,
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelc_requests_rejected_total", Help: "Requests refused before generation, by reason.",
		}, []string{"reason"}),
		sequences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modelc_sequences_total", Help: "Generated sequences (choices) by finish reason.",
		}, []string{"finish_reason"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelc_prompt_tokens_total", Help: "Prompt tokens admitted to a slot.",
		}),
		cachedTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelc_prompt_tokens_cached_total", Help: "Prompt tokens whose keys and values a slot already held.",
		}),
		completionTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelc_generated_tokens_total", Help: "Tokens sampled.",
		}),
		embeddingTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modelc_embedding_tokens_total", Help: "Tokens embedded.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modelc_queue_depth", Help: "Sequences waiting for a slot.",
		}),
		slotsBusy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modelc_slots_busy", Help: "Slots holding a sequence.",
		}),
		slotsTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "modelc_slots", Help: "Slots (sequences decoded together).",
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "modelc_time_to_first_token_seconds", Help: "Time from queueing to the first sampled token.", Buckets: latency,
		}),
		interToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "modelc_time_per_output_token_seconds", Help: "Time between successive tokens of a sequence.", Buckets: latency,
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "modelc_queue_wait_seconds", Help: "Time a sequence waited for a slot.", Buckets: latency,
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "modelc_decode_batch_size", Help: "Sequences run together per decode step.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "modelc_decode_step_seconds", Help: "Duration of one decode step (all running sequences).", Buckets: latency,
		}),
	}
	reg.MustRegister(m.requests, m.requestSeconds, m.rejected, m.sequences, m.promptTokens, m.cachedTokens,
		m.completionTokens, m.embeddingTokens, m.queueDepth, m.slotsBusy, m.slotsTotal, m.ttft, m.interToken,
		m.queueWait, m.batchSize, m.stepSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
