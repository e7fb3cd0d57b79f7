// Package notify sends the events of GitSyncs and HelmReleases to the
// webhooks their namespace's Alerts name (generic JSON or Slack).
//
// It hooks in where the controllers already report: Recorder wraps the
// events.EventRecorder each controller records its Events with, so no
// controller knows of Alerts and none imports this package. The wrapper
// records every Event as before and, for the reasons of its Events list
// (SyncEvents, ReleaseEvents, AutomationEvents: the documented list of
// docs/notifications.md), puts a copy in a bounded in-memory queue without
// ever blocking the reconciler. The Notifier, a leader-election Runnable
// (only the leader sends, so two replicas never send twice), drains the
// queue with a few workers, delivers to every matching Alert of the
// object's own namespace with retries and backoff, and keeps Alerts'
// status. The Alert controller here sets each Alert's Ready condition.
package notify
