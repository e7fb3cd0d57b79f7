package testenv

import "strings"

// AutomatedDeployment is a Deployment in git for image automation tests:
// one replica, one container named app running image, annotated
// fluxcd.io/automated "true" with filter (e.g. semver:~1.0) as its tag
// filter, and no pull secrets.
func AutomatedDeployment(ns, name, image, filter string) string {
	return strings.NewReplacer("NS", ns, "NAME", name, "IMAGE", image, "FILTER", filter).Replace(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
  namespace: NS
  annotations:
    fluxcd.io/automated: "true"
    filter.fluxcd.io/app: FILTER
spec:
  replicas: 1
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers:
        - name: app
          image: IMAGE
`)
}
