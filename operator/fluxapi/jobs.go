package fluxapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Job bounds.
const (
	// maxJobs is how many jobs are kept, finished ones included: fluxctl
	// polls a finished job more than once.
	maxJobs = 1000
	// maxQueued is how many jobs may wait; more are refused.
	maxQueued = 100
	// jobTimeout bounds one job's work.
	jobTimeout = 5 * time.Minute
	// maxSteps bounds the progress lines kept per job.
	maxSteps = 100
)

// Runner does the work of one job: it reports progress through step and
// returns the job's result.
type Runner func(ctx context.Context, spec UpdateSpec, step func(format string, args ...any)) (JobResult, error)

// Jobs queues update-manifests jobs and runs them one at a time, as fluxd
// did, so two releases never race each other to the same branch. Finished
// jobs stay queryable until maxJobs newer ones pushed them out.
type Jobs struct {
	Run Runner
	Log logr.Logger

	once  sync.Once
	queue chan *job
	mu    sync.Mutex
	jobs  map[string]*job
	order []string
}

type job struct {
	id     string
	spec   UpdateSpec
	status JobStatus
	steps  []string
	done   chan struct{}
}

func (j *Jobs) start() {
	j.once.Do(func() {
		j.queue = make(chan *job, maxQueued)
		j.jobs = map[string]*job{}
		go j.loop()
	})
}

// Submit queues a job and returns its ID.
func (j *Jobs) Submit(spec UpdateSpec) (string, error) {
	j.start()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	jb := &job{id: hex.EncodeToString(b), spec: spec, done: make(chan struct{}),
		status: JobStatus{StatusString: JobQueued, Result: JobResult{Spec: &spec}}}
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case j.queue <- jb:
	default:
		return "", fmt.Errorf("%d jobs are already queued; try again later", maxQueued)
	}
	j.jobs[jb.id] = jb
	j.order = append(j.order, jb.id)
	for len(j.order) > maxJobs {
		delete(j.jobs, j.order[0])
		j.order = j.order[1:]
	}
	return jb.id, nil
}

// Queued returns how many jobs wait to run (the running one not counted).
func (j *Jobs) Queued() int {
	j.start()
	return len(j.queue)
}

// Status returns a job's status and progress; ok is false for a job that
// is unknown or was pushed out.
func (j *Jobs) Status(id string) (JobStatus, []string, bool) {
	j.start()
	j.mu.Lock()
	defer j.mu.Unlock()
	jb, ok := j.jobs[id]
	if !ok {
		return JobStatus{}, nil, false
	}
	return jb.status, append([]string(nil), jb.steps...), true
}

// Wait blocks until a job finished or ctx ends.
func (j *Jobs) Wait(ctx context.Context, id string) (JobStatus, error) {
	j.start()
	j.mu.Lock()
	jb, ok := j.jobs[id]
	j.mu.Unlock()
	if !ok {
		return JobStatus{}, fmt.Errorf("unknown job %s", id)
	}
	select {
	case <-jb.done:
	case <-ctx.Done():
		return JobStatus{}, ctx.Err()
	}
	st, _, _ := j.Status(id)
	return st, nil
}

func (j *Jobs) loop() {
	for jb := range j.queue {
		j.runOne(jb)
	}
}

func (j *Jobs) runOne(jb *job) {
	j.set(jb, func(st *JobStatus) { st.StatusString = JobRunning })
	step := func(format string, args ...any) {
		j.mu.Lock()
		defer j.mu.Unlock()
		if len(jb.steps) < maxSteps {
			jb.steps = append(jb.steps, fmt.Sprintf(format, args...))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	res, err := j.Run(ctx, jb.spec, step)
	cancel()
	j.set(jb, func(st *JobStatus) {
		spec := jb.spec
		res.Spec = &spec
		st.Result = res
		if err != nil {
			st.StatusString, st.Err = JobFailed, err.Error()
			return
		}
		st.StatusString = JobSucceeded
	})
	if err != nil {
		j.Log.Info("Job failed", "job", jb.id, "type", jb.spec.Type, "error", err.Error())
	} else {
		j.Log.Info("Job succeeded", "job", jb.id, "type", jb.spec.Type, "revision", res.Revision)
	}
	close(jb.done)
}

func (j *Jobs) set(jb *job, f func(*JobStatus)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(&jb.status)
}

// updateManifests answers POST /v9/update-manifests: it checks the spec,
// queues a job and answers its ID.
func (s *Server) updateManifests(w http.ResponseWriter, r *http.Request) error {
	var spec UpdateSpec
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
		return badRequest("the update spec does not parse: %v", err)
	}
	ids, err := checkSpec(spec)
	if err != nil {
		return err
	}
	if err := s.checkWorkloads(r.Context(), ids); err != nil {
		return err
	}
	id, err := s.Jobs.Submit(spec)
	if err != nil {
		return serverError(err)
	}
	writeJSON(w, http.StatusOK, id)
	return nil
}

// checkSpec refuses a spec no job could run, before it is queued, and
// returns the workloads it names.
func checkSpec(spec UpdateSpec) ([]ID, error) {
	switch spec.Type {
	case UpdateSync:
		return nil, nil
	case UpdateImages:
		var s ImageReleaseSpec
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return nil, badRequest("the image release spec does not parse: %v", err)
		}
		rel, err := parseRelease(s)
		return rel.ids, err
	case UpdateContainers:
		var s ContainersReleaseSpec
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return nil, badRequest("the containers release spec does not parse: %v", err)
		}
		rel, err := parseContainers(s)
		return rel.ids, err
	case UpdatePolicy:
		var s map[string]PolicyUpdate
		if err := json.Unmarshal(spec.Spec, &s); err != nil {
			return nil, badRequest("the policy update does not parse: %v", err)
		}
		changes, err := parsePolicies(s)
		ids := make([]ID, len(changes))
		for i, c := range changes {
			ids[i] = c.id
		}
		return ids, err
	}
	return nil, badRequest("unknown update type %q (want image, containers, policy or sync)", spec.Type)
}

// checkWorkloads answers fluxd's "missing" error for a workload no
// GitSync's inventory holds: nothing is queued, nothing committed.
func (s *Server) checkWorkloads(ctx context.Context, ids []ID) error {
	if len(ids) == 0 {
		return nil
	}
	ws, err := s.Cluster.workloads(ctx, filter{ids: ids})
	if err != nil {
		return serverError(err)
	}
	for _, id := range ids {
		found := false
		for _, w := range ws {
			found = found || id.matches(w.id)
		}
		if !found {
			return missing("workload %s is not among the workloads of any GitSync (list-workloads -a lists them, with fluxctl or helmflux)", id)
		}
	}
	return nil
}

// job answers GET /v6/jobs?id=.
func (s *Server) job(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("id")
	if id == "" {
		return badRequest("the id query parameter is required")
	}
	st, _, ok := s.Jobs.Status(id)
	if !ok {
		return missing("unknown job %s: it never was, or it finished long ago", id)
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// jobSteps answers GET /v12/jobs?id=.
func (s *Server) jobSteps(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("id")
	if id == "" {
		return badRequest("the id query parameter is required")
	}
	st, steps, ok := s.Jobs.Status(id)
	if !ok {
		return missing("unknown job %s: it never was, or it finished long ago", id)
	}
	if steps == nil {
		steps = []string{}
	}
	writeJSON(w, http.StatusOK, JobProgress{Status: st, Steps: steps})
	return nil
}
