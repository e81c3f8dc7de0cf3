package session

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sessiontoken"
)

// dummyService satisfies Service for tests that never call it (option checks).
type dummyService struct{}

func (dummyService) Sign(context.Context, sessiontoken.SignRequest) (sessiontoken.SignResult, error) {
	return sessiontoken.SignResult{}, errors.New("not called in these tests")
}

func (dummyService) Verify(context.Context, sessiontoken.VerifyRequest) (sessiontoken.VerifyResult, error) {
	return sessiontoken.VerifyResult{}, errors.New("not called in these tests")
}

func (dummyService) Revoke(context.Context, sessiontoken.RevokeRequest) (sessiontoken.RevokeResult, error) {
	return sessiontoken.RevokeResult{}, errors.New("not called in these tests")
}

type logPrinter struct{ b *strings.Builder }

func (l logPrinter) Printf(format string, v ...any) { fmt.Fprintf(l.b, format+"\n", v...) }
