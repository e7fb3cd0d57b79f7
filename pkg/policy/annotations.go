package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Annotation prefixes. Repositories written for Flux v1 use both fluxcd.io/
// and the older flux.weave.works/; helmflux reads both so they keep working,
// and the current prefix wins when an object carries both.
const (
	// Prefix is the current Flux v1 annotation prefix.
	Prefix = "fluxcd.io/"
	// LegacyPrefix is the prefix Flux used before the fluxcd.io domain.
	LegacyPrefix = "flux.weave.works/"
	// FilterPrefix + container holds that container's tag filter; it takes
	// precedence over the tag.<container> keys.
	FilterPrefix = "filter.fluxcd.io/"
	// OrderPrefix + container holds how that container's candidates are
	// ranked (a helmflux addition, see Order).
	OrderPrefix = "order.helmflux.dev/"
	// ExtractPrefix + container holds the regexp.Expand template that takes
	// the ordering key out of a tag (a helmflux addition, see
	// ContainerPolicy.Extract).
	ExtractPrefix = "extract.helmflux.dev/"
)

// Keys that follow Prefix or LegacyPrefix.
const (
	// AutomatedKey set to "true" lets helmflux write newer tags to git.
	AutomatedKey = "automated"
	// LockedKey set to "true" forbids every release of the object, automated
	// or manual.
	LockedKey = "locked"
	// LockedMsgKey says why the object is locked.
	LockedMsgKey = "locked_msg"
	// LockedUserKey says who locked the object.
	LockedUserKey = "locked_user"
	// IgnoreKey set to "true" makes automation skip the object.
	IgnoreKey = "ignore"
	// TagKeyPrefix + container holds that container's tag filter.
	TagKeyPrefix = "tag."
)

// Policy is what an object's annotations say about automation. The
// operator reads it once per object and asks Container for each container
// it finds in the object.
type Policy struct {
	// Automated is true when automation may write newer tags to git.
	Automated bool
	// Locked is true when no release of the object may happen.
	Locked bool
	// LockedMsg and LockedUser are shown to whoever hits the lock.
	LockedMsg  string
	LockedUser string
	// Ignored is true for ignore "true" only. "sync_only" concerns syncing
	// (the object is applied but never pruned), not automation, as in Flux v1
	// where ignore is a boolean policy.
	Ignored bool

	containers map[string]*containerAnnotations
}

// containerAnnotations holds the raw per-container annotations with the keys
// they came from, so Container can name the key in its errors.
type containerAnnotations struct {
	filter, order, extract annotation
	filterRank             int // which filter source won; lower wins
}

type annotation struct{ key, value string }

func (a annotation) set() bool { return a.key != "" }

// filterSources lists where a container's filter may come from, most
// important first.
var filterSources = []string{FilterPrefix, Prefix + TagKeyPrefix, LegacyPrefix + TagKeyPrefix}

// FromAnnotations reads the automation annotations of an object. It never
// fails, so one bad annotation cannot hide the lock or ignore annotations
// next to it; invalid per-container values are reported by Container.
func FromAnnotations(ann map[string]string) Policy {
	p := Policy{
		Automated:  flag(ann, AutomatedKey) == "true",
		Locked:     flag(ann, LockedKey) == "true",
		LockedMsg:  flag(ann, LockedMsgKey),
		LockedUser: flag(ann, LockedUserKey),
		Ignored:    flag(ann, IgnoreKey) == "true",
	}
	for k, v := range ann {
		for rank, prefix := range filterSources {
			if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
				c := p.container(name)
				if !c.filter.set() || rank < c.filterRank {
					c.filter, c.filterRank = annotation{k, v}, rank
				}
			}
		}
		if name, ok := strings.CutPrefix(k, OrderPrefix); ok && name != "" {
			p.container(name).order = annotation{k, v}
		}
		if name, ok := strings.CutPrefix(k, ExtractPrefix); ok && name != "" {
			p.container(name).extract = annotation{k, v}
		}
	}
	return p
}

// flag returns the value of key under Prefix, or under LegacyPrefix when the
// current prefix is absent.
func flag(ann map[string]string, key string) string {
	if v, ok := ann[Prefix+key]; ok {
		return v
	}
	return ann[LegacyPrefix+key]
}

func (p *Policy) container(name string) *containerAnnotations {
	if p.containers == nil {
		p.containers = map[string]*containerAnnotations{}
	}
	c, ok := p.containers[name]
	if !ok {
		c = &containerAnnotations{}
		p.containers[name] = c
	}
	return c
}

// Container returns the tag policy of the named container: its filter
// (glob:* when none is set), its order (defaulting to semver for semver
// filters and time otherwise) and its extract template. The error names the
// annotation key at fault, so the user knows what to fix.
func (p Policy) Container(name string) (ContainerPolicy, error) {
	var a containerAnnotations
	if c, ok := p.containers[name]; ok {
		a = *c
	}
	var cp ContainerPolicy
	if a.filter.set() {
		f, err := ParseFilter(a.filter.value)
		if err != nil {
			return ContainerPolicy{}, fmt.Errorf("annotation %s: %w", a.filter.key, err)
		}
		cp.Filter = f
	} else {
		cp.Filter, _ = ParseFilter("glob:*")
	}
	cp.Order = defaultOrder(cp.Filter.Kind)
	if a.order.set() {
		o, asc, err := parseOrder(a.order.value)
		if err != nil {
			return ContainerPolicy{}, fmt.Errorf("annotation %s: %w", a.order.key, err)
		}
		cp.Order, cp.Ascending = o, asc
	}
	if a.extract.set() {
		cp.Extract = strings.TrimSpace(a.extract.value)
		if cp.Extract == "" {
			return ContainerPolicy{}, fmt.Errorf("annotation %s: empty extract template", a.extract.key)
		}
		if err := checkExtract(cp.Filter.c, cp.Order, cp.Extract); err != nil {
			return ContainerPolicy{}, fmt.Errorf("annotation %s: %w", a.extract.key, err)
		}
	}
	return cp, nil
}

// Containers returns the sorted names of the containers that per-container
// annotations mention, so the caller can warn about annotations that name
// no container of the object (a typo would otherwise silently leave the
// container on the default policy).
func (p Policy) Containers() []string {
	names := make([]string, 0, len(p.containers))
	for n := range p.containers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
