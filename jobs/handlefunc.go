package jobs

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
)

// HandleFunc registers fn as the River worker for the handler kind named
// kind, with no Go type for the kind: the kind may come from configuration,
// and a program with many handlers declares none of Handle's kind types.
// Its jobs have the same outcomes as Handle's. It fails when kind is empty,
// fn is nil, or a worker for the kind is registered already (by
// HandleFunc, Handle or River's AddWorker).
//
// River checks the kind's spelling when the client is created
// (river.NewClient refuses spaces and commas, among others).
func HandleFunc(workers *river.Workers, kind string, fn HandlerFunc) error {
	return handleFunc("jobs.HandleFunc", workers, kind, fn)
}

// handleFunc is HandleFunc, its errors naming op, the function called.
func handleFunc(op string, workers *river.Workers, kind string, fn HandlerFunc) error {
	switch {
	case workers == nil:
		return fmt.Errorf("%s: workers is nil: pass the river.Workers the client will be given", op)
	case kind == "":
		return fmt.Errorf("%s: kind is empty: name the handler kind that routes refer to", op)
	case fn == nil:
		return fmt.Errorf("%s: handler for kind %q is nil", op, kind)
	}
	if err := addNamedWorker(workers, kind, fn); err != nil {
		return fmt.Errorf("register handler %s: %w", kind, err)
	}
	return nil
}

// namedArgs is the River job args type of the kinds HandleFunc registers.
// River takes a worker's kind from the args value it is registered with;
// it decodes each job's args into a zero namedArgs, whose kind stays empty
// (work reads the kind from the job row), and its Payload fields as
// Args[K]'s.
type namedArgs struct {
	kind string
	Payload
}

// Kind returns the kind the args were registered with.
func (a namedArgs) Kind() string { return a.kind }

// namedWorker adapts a HandlerFunc to River's Worker interface for a kind
// given by name.
type namedWorker struct {
	river.WorkerDefaults[namedArgs]
	fn HandlerFunc
}

func (w *namedWorker) Work(ctx context.Context, job *river.Job[namedArgs]) error {
	return work(ctx, w.fn, job.Args.Payload, job.JobRow)
}

// addNamedWorker registers fn for kind with river.AddWorkerArgs, River's
// one way to give a kind at run time. Unlike AddWorkerSafely it panics
// where River refuses the worker (a kind registered twice), before
// changing the registry; the panic is returned as the error it carries.
func addNamedWorker(workers *river.Workers, kind string, fn HandlerFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	river.AddWorkerArgs(workers, namedArgs{kind: kind}, &namedWorker{fn: fn})
	return nil
}
