package v1alpha1

import (
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertKind is the kind of the Alert API.
const AlertKind = "Alert"

// AlertType says which payload an Alert sends.
// +kubebuilder:validation:Enum=generic;slack
type AlertType string

const (
	// AlertGeneric posts helmflux's JSON event (docs/notifications.md).
	AlertGeneric AlertType = "generic"
	// AlertSlack posts a Slack incoming-webhook message (text and
	// attachments), which Mattermost, Rocket.Chat and others accept too.
	AlertSlack AlertType = "slack"
)

// EventSeverity filters an Alert's events.
// +kubebuilder:validation:Enum=info;error
type EventSeverity string

const (
	// SeverityInfo sends every event (successes and failures).
	SeverityInfo EventSeverity = "info"
	// SeverityError sends failures only.
	SeverityError EventSeverity = "error"
)

// AlertSpec says which events of the Alert's namespace go where.
type AlertSpec struct {
	// Type of the receiver: generic (JSON) or slack.
	// +kubebuilder:default=generic
	// +optional
	Type AlertType `json:"type,omitempty"`

	// SecretRef names a Secret of the Alert's namespace whose key "address"
	// holds the receiver's http(s) URL. The URL is a secret (a Slack webhook
	// URL is its own credential): it is never logged, nor written to a
	// status or an Event.
	// +required
	SecretRef meta.LocalObjectReference `json:"secretRef"`

	// EventSeverity is the lowest severity sent: info (default) sends
	// everything, error sends failures only.
	// +kubebuilder:default=info
	// +optional
	EventSeverity EventSeverity `json:"eventSeverity,omitempty"`

	// EventSources are the objects of the Alert's namespace whose events are
	// sent. An Alert never sees objects of another namespace.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +required
	EventSources []EventSource `json:"eventSources"`

	// Summary is a free text added to every message (a cluster's name, a
	// team to call).
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Summary string `json:"summary,omitempty"`

	// Suspend stops sending until it is set to false again; events in
	// between are not sent later.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// EventSource selects objects of the Alert's namespace.
type EventSource struct {
	// Kind of the objects: GitSync or HelmRelease.
	// +kubebuilder:validation:Enum=GitSync;HelmRelease
	// +required
	Kind string `json:"kind"`

	// Name of the object, or * for every object of the kind.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// MatchLabels, with name *, limits the objects to those with all these labels.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// AlertStatus is the observed state of an Alert.
type AlertStatus struct {
	// ObservedGeneration is the last generation reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready says whether the receiver's Secret and URL are
	// usable; Delivered is False after a message was given up on.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Alert sends the events of GitSyncs and HelmReleases of its namespace to a
// webhook (generic JSON or Slack): sync failures and recoveries, installs,
// upgrades, rollbacks and failed releases, automation commits and holds.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=helmflux
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.spec.eventSeverity`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Alert struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AlertSpec `json:"spec"`
	// +optional
	Status AlertStatus `json:"status,omitempty"`
}

// AlertList is a list of Alerts.
// +kubebuilder:object:root=true
type AlertList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Alert `json:"items"`
}

// GetConditions returns the status conditions.
func (in *Alert) GetConditions() []metav1.Condition { return in.Status.Conditions }

// SetConditions replaces the status conditions.
func (in *Alert) SetConditions(c []metav1.Condition) { in.Status.Conditions = c }

// GetType returns spec.type, generic when unset.
func (in *Alert) GetType() AlertType {
	if in.Spec.Type == "" {
		return AlertGeneric
	}
	return in.Spec.Type
}

// Sends reports whether an event of severity sev passes spec.eventSeverity.
func (in *Alert) Sends(sev EventSeverity) bool {
	return in.Spec.EventSeverity != SeverityError || sev == SeverityError
}

// AddressKey is the key of an Alert's Secret that holds the receiver's URL.
const AddressKey = "address"

// DeliveredCondition is False once a message was given up on after every
// retry, True again at the next message delivered.
const DeliveredCondition = "Delivered"

// Condition reasons of an Alert.
const (
	// AlertReadyReason: the Secret holds an http(s) URL.
	AlertReadyReason = "Valid"
	// SecretNotFoundReason: spec.secretRef names no Secret, or it has no address.
	SecretNotFoundReason = "SecretNotFound"
	// InvalidAddressReason: the address is not an http(s) URL (or names the
	// operator's machine without --allow-local-urls).
	InvalidAddressReason = "InvalidAddress"
	// DeliveredReason: the last message was delivered.
	DeliveredReason = "Delivered"
	// DeliveryFailedReason: a message was given up on after every retry.
	DeliveryFailedReason = "DeliveryFailed"
)

// Event reasons of a GitSync that only Alerts need.
const (
	// RecoveredReason: the first pass that applied everything after passes
	// that failed.
	RecoveredReason = "Recovered"
)

func init() {
	knownTypes = append(knownTypes, &Alert{}, &AlertList{})
}
