<?php
// The PHP end-to-end test's app (client/php/tests/session_e2e_test.py), run by PHP's
// built-in web server: a login, a counter, a logout, all through session_start(), and the
// revocation logouts (logout here, log out everywhere; subjectKey 'user').
// SESSIONTOKEN_GATEWAY (http://127.0.0.1:PORT) and SESSIONTOKEN_LOG (a file) come from the
// environment.
declare(strict_types=1);

require __DIR__ . '/../src/autoload.php';

$log = getenv('SESSIONTOKEN_LOG');
$client = new SessionToken\Client(getenv('SESSIONTOKEN_GATEWAY'), ['timeoutMs' => 1000]);
$handler = SessionToken\SessionHandler::register($client, [
    'keyring' => 'default',
    'audience' => 'php-e2e',
    'cookie' => ['samesite' => 'Strict', 'maxAge' => 3600],
    'subjectKey' => 'user',
    'logger' => static function (string $level, string $message) use ($log): void {
        file_put_contents($log, "$level $message\n", FILE_APPEND | LOCK_EX);
    },
]);

header('Content-Type: application/json');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
session_start();
switch ($path) {
    case '/login':
        session_regenerate_id(true);
        $_SESSION['user'] = (string)($_GET['user'] ?? '');
        $_SESSION['visits'] = 0;
        break;
    case '/visit':
        if (isset($_SESSION['user'])) {
            $_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
        }
        break;
    case '/logout':
        session_destroy();
        $_SESSION = [];
        break;
    case '/logout-here':
    case '/logout-everywhere':
        try {
            $r = $path === '/logout-here' ? $handler->logout() : $handler->logoutEverywhere();
            echo json_encode(['revoked' => $r !== null && $r['revokedAt'] > 0]);
        } catch (SessionToken\ServiceError $e) {
            echo json_encode(['revoked' => false, 'error' => $e->grpcCode]);
        } catch (LogicException $e) {
            echo json_encode(['revoked' => false, 'error' => $e->getMessage()]);
        }
        exit;
    case '/object':  // not JSON data: refused, logged
        $_SESSION['object'] = new ArrayObject([1]);
        break;
}
echo json_encode(['user' => $_SESSION['user'] ?? null, 'visits' => $_SESSION['visits'] ?? null]);
