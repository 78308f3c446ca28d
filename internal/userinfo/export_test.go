package userinfo

// The pacer's tests run in testing/synctest bubbles, whose clock moves
// only with the runtime's timers: a timerfd would wait in real time.
func init() { paceSleep = sleepTimer }
