# A MySQL origin restarted under load: ten sessions over an origin limit of
# two, in transactions that read back what they wrote, while MariaDB is
# stopped and started again (t/mysql_restart_load.py). Sessions that held a
# connection get a MySQL error and reconnect; none gets another's answer;
# the agent reconnects to the origin once it is back and keeps running.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use HdTest;
use MariaDB;

system('/usr/bin/python3', '-c', 'import pymysql') == 0
  or plan skip_all => 'PyMySQL is not installed (Debian: apt-get install python3-pymysql)';

my $PW = 'my-Restart-pw5';
my $my = MariaDB->new('restart');
$my->init;
$my->start;
$my->create_app_db($PW);

my $myport = PostgreSQL::Test::Cluster::get_free_port();
my $agent = hd_agent(name => 'mysql_restart', bail => 1,
	settings => "mysql_listen_port = $myport\nquery_wait_timeout = 30\nserver_login_retry = 200ms\n",
	configs => [ [ 'create shop', 'shop', "--connection-string=mysql://app:$PW\@127.0.0.1:"
		  . $my->port . '/shopdb', '--origin-connection-limit', '2' ] ]);

my $restarted = File::Spec->rel2abs(PostgreSQL::Test::Utils::tempdir('restart_flag')) . '/restarted';
my ($out, $err) = ('', '');
local $ENV{AGENT_PORT} = $myport;
local $ENV{PW} = $PW;
local $ENV{CONFIG} = 'shop';
local $ENV{RESTARTED} = $restarted;
my $h = IPC::Run::start([ '/usr/bin/python3', dirname(__FILE__) . '/mysql_restart_load.py' ],
	'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(240));
ok(wait_for(sub { $h->pump_nb; $out =~ /^loaded$/m }, 60), 'ten sessions are busy through the agent')
  or diag($err);
$my->stop;
sleep 1;	# clients meet the origin down (refused logins, lost connections)
$my->start;
HdTest::write_file($restarted, "yes\n");
$h->finish;
for my $line (split /\n/, $out)
{
	ok(!$1, $2) if $line =~ /^(not )?ok - (.*)$/;
}
like($out, qr/^done$/m, 'the load ran to the end') or diag($err);
ok($agent->alive, 'the agent is still running');
$agent->signal('TERM');
$agent->finish;
done_testing();
