# Thin wrapper: ./dev is the entry point (it needs nothing but bash and python3).
.PHONY: demo test check bench
demo:
	./dev demo
test:
	./dev test
check:
	./dev check
bench:
	./dev bench
